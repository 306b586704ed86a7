"""One bench results folder as one .tar.gz under a size limit (the device tool returns at most 8 files of 16 MiB).

Everything goes in when it fits. Otherwise the largest MP4s are left out one by one, from the folder and from the
report (report.html embeds each row's video, so a video weighs about 2.3 times its size): results.json points the
dropped rows' `video` at null, report.html is rendered again without them, and BUNDLE.txt inside the archive
names what was left out and why. Posters, tables, plot and results always stay.

    python3 scripts/gpu/bundle.py RESULTS_DIR OUT.tar.gz [--limit-mib 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any


def write_tar(folder: Path, archive: Path) -> int:
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=archive.name.removesuffix(".tar.gz"))
    return archive.stat().st_size


def drop_largest_video(folder: Path, results: dict[str, Any]) -> str | None:
    """Remove the largest MP4 the rows point at; null those rows' `video`. None when no video is left."""
    videos = {str(row["video"]) for row in results["rows"] if row.get("video") and (folder / row["video"]).is_file()}
    if not videos:
        return None
    largest = max(videos, key=lambda video: (folder / video).stat().st_size)
    (folder / largest).unlink()
    for row in results["rows"]:
        if row.get("video") == largest:
            row["video"] = None
    return largest


def rerender(folder: Path, results: dict[str, Any]) -> None:
    """results.json and report.html again, from the edited rows (the plot does not change)."""
    from bench.html import write_html
    from bench.report import write_json

    write_json(results, folder / "results.json")
    if (folder / "plot.png").is_file():
        write_html(results, folder, folder / "plot.png", folder / "report.html")


def bundle(source: Path, archive: Path, limit: int) -> list[str]:
    """Write the archive; returns the videos left out (empty when everything fit). Raises when even the folder
    without any video passes the limit."""
    with tempfile.TemporaryDirectory(prefix="npc-bundle-") as scratch:
        folder = Path(scratch) / source.name
        shutil.copytree(source, folder)
        results_path = folder / "results.json"
        results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else None
        dropped: list[str] = []
        while write_tar(folder, archive) > limit:
            video = None if results is None else drop_largest_video(folder, results)
            if results is None or video is None:
                size = archive.stat().st_size
                archive.unlink()
                raise ValueError(
                    f"{source} packs to {size / 2**20:.1f} MiB without any video, over the {limit / 2**20:.1f} MiB "
                    "limit: keep fewer rows per bench run"
                )
            dropped.append(video)
            rerender(folder, results)
            note = (
                f"Left out to keep this archive under {limit / 2**20:.1f} MiB (the device tool returns files of at "
                "most 16 MiB); results.json and report.html no longer point at them:\n"
            )
            (folder / "BUNDLE.txt").write_text(note + "".join(f"  {name}\n" for name in dropped), encoding="utf-8")
        return dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--limit-mib", type=float, default=15.0)
    args = parser.parse_args()
    if not args.source.is_dir():
        print(f"bundle: {args.source} is not a folder (did its bench stage run?)", file=sys.stderr)
        return 1
    try:
        dropped = bundle(args.source, args.archive, int(args.limit_mib * 2**20))
    except ValueError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    size = args.archive.stat().st_size / 2**20
    left_out = f"; left out {len(dropped)} video(s): {', '.join(dropped)}" if dropped else ""
    print(f"bundle: {args.archive} ({size:.1f} MiB){left_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
