"""Bench results folders as one .tar.gz under a size limit (the device tool returns at most 8 files of 16 MiB, 64 MiB
together), each folder a top-level folder of the archive.

Everything goes in when it fits. Otherwise the largest MP4s (of all the folders) are left out one by one, from their
folder and from its report (report.html embeds each row's video, so a video weighs about 2.3 times its size):
results.json points the dropped rows' `video` at null, report.html is rendered again without them, and BUNDLE.txt
inside the folder names what was left out and why. Posters, tables, plot and results always stay. The archive is
replaced whole (written beside it, then renamed): the GPU check rewrites it after every stage.

    python3 scripts/gpu/bundle.py RESULTS_DIR [RESULTS_DIR ...] OUT.tar.gz [--limit-mib 14]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any


def write_tar(folders: list[Path], archive: Path) -> int:
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for folder in folders:
            tar.add(folder, arcname=folder.name)
    return archive.stat().st_size


def drop_largest_video(folders: dict[Path, dict[str, Any]]) -> tuple[Path, str] | None:
    """Remove the largest MP4 any folder's rows point at; null those rows' `video`. None when no video is left."""
    videos = [
        (folder, str(row["video"]))
        for folder, results in folders.items()
        for row in results["rows"]
        if row.get("video") and (folder / row["video"]).is_file()
    ]
    if not videos:
        return None
    folder, largest = max(videos, key=lambda item: (item[0] / item[1]).stat().st_size)
    (folder / largest).unlink()
    for row in folders[folder]["rows"]:
        if row.get("video") == largest:
            row["video"] = None
    return folder, largest


def rerender(folder: Path, results: dict[str, Any]) -> None:
    """results.json and report.html again, from the edited rows (the plot does not change)."""
    from bench.html import write_html
    from bench.report import write_json

    write_json(results, folder / "results.json")
    if (folder / "plot.png").is_file():
        write_html(results, folder, folder / "plot.png", folder / "report.html")


def bundle(sources: list[Path], archive: Path, limit: int) -> list[str]:
    """Write the archive; returns the videos left out (empty when everything fit). Raises when even the folders
    without any video pass the limit."""
    with tempfile.TemporaryDirectory(prefix="npc-bundle-") as scratch:
        folders = []
        for source in sources:
            folders.append(Path(scratch) / source.name)
            shutil.copytree(source, folders[-1])
        results = {
            folder: json.loads((folder / "results.json").read_text(encoding="utf-8"))
            for folder in folders
            if (folder / "results.json").is_file()
        }
        dropped: dict[Path, list[str]] = {}
        partial = archive.with_name(f".{archive.name}.partial")  # the archive of an earlier stage stays till then
        while write_tar(folders, partial) > limit:
            found = drop_largest_video(results)
            if found is None:
                size = partial.stat().st_size
                partial.unlink()
                names = ", ".join(str(source) for source in sources)
                raise ValueError(
                    f"{names} pack to {size / 2**20:.1f} MiB without any video, over the {limit / 2**20:.1f} MiB "
                    "limit: keep fewer rows per bench run"
                )
            folder, video = found
            dropped.setdefault(folder, []).append(video)
            rerender(folder, results[folder])
            note = (
                f"Left out to keep this archive under {limit / 2**20:.1f} MiB (the device tool returns files of at "
                "most 16 MiB); results.json and report.html no longer point at them:\n"
            )
            (folder / "BUNDLE.txt").write_text(note + "".join(f"  {name}\n" for name in dropped[folder]), "utf-8")
        os.replace(partial, archive)
        return [f"{folder.name}/{video}" for folder, videos in dropped.items() for video in videos]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+", help="RESULTS_DIR ... OUT.tar.gz")
    parser.add_argument("--limit-mib", type=float, default=14.0)
    args = parser.parse_args()
    *sources, archive = args.paths
    if not sources:
        parser.error("give at least one RESULTS_DIR and the archive")
    for source in sources:
        if not source.is_dir():
            print(f"bundle: {source} is not a folder (did its bench stage run?)", file=sys.stderr)
            return 1
    try:
        dropped = bundle(sources, archive, int(args.limit_mib * 2**20))
    except ValueError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    size = archive.stat().st_size / 2**20
    left_out = f"; left out {len(dropped)} video(s): {', '.join(dropped)}" if dropped else ""
    print(f"bundle: {archive} ({size:.1f} MiB){left_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
