"""`npc-worker bench --compare A B`: B/A ratios per matching row, and compare.png next to B."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner


def test_compare_prints_the_ratio_of_each_matching_row_and_writes_the_png(
    in_process_run: Path, queue_run: Path, tmp_path: Path, npc_worker_app: typer.Typer
) -> None:
    b = tmp_path / "b"
    shutil.copytree(queue_run, b)  # leave the session's run as it was
    result = CliRunner().invoke(npc_worker_app, ["bench", "--compare", str(in_process_run), str(b / "results.json")])
    assert result.exit_code == 0, result.output

    row_a = json.loads((in_process_run / "results.json").read_text())["rows"][0]
    row_b = json.loads((b / "results.json").read_text())["rows"][0]
    lines = result.output.splitlines()
    [line] = [line for line in lines if line.startswith("tiny-wan / realtime / catalog")]
    p50, per_step, *stages = line.removeprefix("tiny-wan / realtime / catalog").split()
    assert float(p50) == round(row_b["p50_ms"] / row_a["p50_ms"], 3)
    assert float(per_step) == round(row_b["s_per_step"] / row_a["s_per_step"], 3)
    header = lines[1].split()
    assert header[:3] == ["row", "p50", "s/step"]
    # stages on both paths have ratios; stages of only one path (denoise, generate) have no column
    shown = dict(zip(header[3:], stages, strict=True))
    assert {"prepare", "encode", "upload"} <= set(shown) and not {"denoise", "generate"} & set(shown)
    assert float(shown["encode"]) == round(row_b["stages"]["encode"] / row_a["stages"]["encode"], 3)
    assert "only in A: tiny-wan / fast / catalog" in lines
    assert "only in B: tiny-wan / realtime / stock" in lines
    assert (b / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_writes_into_out_when_given_and_refuses_runs_with_nothing_in_common(
    in_process_run: Path, tmp_path: Path, npc_worker_app: typer.Typer
) -> None:
    out = tmp_path / "cmp"
    same = CliRunner().invoke(
        npc_worker_app, ["bench", "--compare", str(in_process_run), str(in_process_run), "--out", str(out)]
    )
    assert same.exit_code == 0, same.output
    assert "1.000" in same.output and (out / "compare.png").is_file()

    other = tmp_path / "other"
    other.mkdir()
    results = json.loads((in_process_run / "results.json").read_text())
    for row in results["rows"]:
        row["model"] = "another-model"
    (other / "results.json").write_text(json.dumps(results))
    refused = CliRunner().invoke(npc_worker_app, ["bench", "--compare", str(in_process_run), str(other)])
    assert refused.exit_code == 2
    assert "no row of" in refused.output and "another-model / fast / catalog" in refused.output
