"""A bench stopped mid-matrix keeps every row it finished: results.json and results.csv are rewritten after each row,
SIGTERM (what `timeout` sends at a stage's cap) saves all four files and exits 143, and even SIGKILL, which nothing
can catch, leaves the rows written before it. Each test stops a real `npc-worker bench` child process."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.conftest import load_valid_results

PRESETS = "realtime,fast,balanced,quality"  # four rows: the child is stopped after the first one


def start_bench(catalog: Path, out: Path) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    env.update({"HF_HUB_OFFLINE": "1", "NPC_WORKER_DATA_DIR": str(out.parent / "data"), "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "worker", "bench", "--catalog", str(catalog), "--device", "cpu"]
    command += ["--presets", PRESETS, "--repeats", "2", "--warmup", "0", "--out", str(out)]
    command += ["--override", "width=64 height=64 steps=2 duration=0.5"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows_written(out: Path) -> int:
    try:
        return len(json.loads((out / "results.json").read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError):
        return 0


def after_first_row(bench: subprocess.Popen[str], out: Path, timeout_s: float = 240) -> int:
    """Wait until the child has written a row; the number of rows on disk at that moment."""
    deadline = time.monotonic() + timeout_s
    while (rows := rows_written(out)) == 0:
        assert bench.poll() is None, bench.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no row written in time"
        time.sleep(0.05)
    return rows


def csv_rows(out: Path) -> list[dict[str, Any]]:
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_sigterm_mid_matrix_saves_every_finished_row_and_exits_143(bench_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bench = start_bench(bench_catalog, out)
    seen = after_first_row(bench, out)
    bench.send_signal(signal.SIGTERM)
    _, stderr = bench.communicate(timeout=120)

    assert bench.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    results = load_valid_results(out)  # complete files, valid against the schema
    rows = results["rows"]
    assert seen <= len(rows) < 4  # every row finished before the signal, and the matrix was not finished
    assert results["progress"] == {"state": "stopped", "rows_done": len(rows), "rows_planned": 4}
    assert [row["preset"] for row in rows] == PRESETS.split(",")[: len(rows)]
    assert all(row["runs"] == 2 and len(row["e2e_ms"]) == 2 for row in rows)
    assert [line["preset"] for line in csv_rows(out)] == [row["preset"] for row in rows]
    assert (out / "plot.png").is_file() and (out / "report.html").is_file()
    last = stderr.strip().splitlines()[-1]
    assert last == f"error: bench stopped by SIGTERM (the {len(rows)} of 4 rows finished before it are in {out})"
    assert not list(out.glob(".*.partial"))  # no half-written file left beside the results


def test_sigkill_mid_matrix_still_leaves_the_rows_written_after_each_row(bench_catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bench = start_bench(bench_catalog, out)
    seen = after_first_row(bench, out)
    bench.kill()
    bench.communicate(timeout=60)

    results = load_valid_results(out)
    assert len(results["rows"]) >= seen
    assert results["progress"]["state"] == "running"  # it never got to say more: the files are as of its last row
    assert results["progress"]["rows_done"] == len(results["rows"])
    assert len(csv_rows(out)) == len(results["rows"])
