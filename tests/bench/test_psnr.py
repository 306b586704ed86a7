"""psnr_db: each row's frames against the catalog row of its model and preset, on the same seeds."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from bench.psnr import Output, json_psnr, psnr_db, row_psnr, squared_error
from tests.bench.conftest import load_valid_results, npc_worker_bench


def test_psnr_of_known_errors() -> None:
    base = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    assert psnr_db(*squared_error(base, base.copy())) == math.inf
    error, count = squared_error(base, base + 1)  # every value off by one: MSE 1
    assert (error, count) == (96.0, 96)
    assert psnr_db(error, count) == pytest.approx(10 * math.log10(255**2))  # 48.13 dB
    with pytest.raises(ValueError, match="cannot be compared"):
        squared_error(base, base[:1])
    assert (json_psnr(math.inf), json_psnr(48.1308), json_psnr(None)) == ("inf", 48.13, None)


def test_a_row_is_pooled_over_its_runs_pairing_runs_of_the_same_index(tmp_path: Path) -> None:
    def saved(name: str, value: int) -> Output:
        path = tmp_path / f"{name}.npy"
        np.save(path, np.full((1, 2, 2, 3), value, dtype=np.uint8))
        return Output(frames=path, video=None)

    baseline = [saved("b0", 10), saved("b1", 20)]
    assert row_psnr([saved("r0", 10), saved("r1", 20)], baseline) == math.inf
    # run 0 equal, run 1 off by 2: pooled MSE (0 + 4) / 2 = 2
    assert row_psnr([saved("s0", 10), saved("s1", 22)], baseline) == pytest.approx(10 * math.log10(255**2 / 2))
    assert row_psnr([Output(None, None)], baseline) is None  # nothing kept: no figure
    other = tmp_path / "other.npy"
    np.save(other, np.zeros((1, 4, 4, 3), dtype=np.uint8))
    assert row_psnr([Output(other, None)], baseline[:1]) is None  # another size: not comparable


@pytest.fixture(scope="session")
def psnr_run(tmp_path_factory: pytest.TempPathFactory, bench_catalog: Path) -> Path:
    """The realtime preset (4 steps, cfg 1.5) as the catalog has it, bare diffusers, a first-block cache that skips
    blocks, and a distilled configuration (2 steps, no guidance): two runs each, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("bench-psnr")
    out = root / "out"
    run = npc_worker_bench(
        "--catalog",
        str(bench_catalog),
        "--presets",
        "realtime",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--override",
        "width=64 height=64 duration=0.5",
        "--setting",
        "catalog",
        "--setting",
        "stock",
        "--setting",
        "fbc:cache.type=first_block,cache.threshold=10",
        "--setting",
        "distilled:preset.steps=2,preset.cfg=1.0",
        "--out",
        str(out),
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    return out


def test_each_row_reports_its_deviation_from_the_catalog_row(psnr_run: Path) -> None:
    rows = {row["setting"]: row for row in load_valid_results(psnr_run)["rows"]}
    assert rows["catalog"]["psnr_db"] is None  # the baseline itself
    assert rows["stock"]["psnr_db"] == "inf"  # the worker's path computes exactly what bare diffusers does
    for lossy in ("fbc", "distilled"):
        assert isinstance(rows[lossy]["psnr_db"], float) and 0 < rows[lossy]["psnr_db"] < 100, rows[lossy]
    assert (rows["distilled"]["steps"], rows["distilled"]["cfg"], rows["distilled"]["cfg_passes"]) == (2, 1.0, 1)
    with (psnr_run / "results.csv").open(encoding="utf-8") as handle:
        lines = {line["setting"]: line for line in csv.DictReader(handle)}
    assert (lines["catalog"]["psnr_db"], lines["stock"]["psnr_db"]) == ("", "inf")
    assert float(lines["fbc"]["psnr_db"]) == rows["fbc"]["psnr_db"]
    html = (psnr_run / "report.html").read_text(encoding="utf-8")
    assert "<th>PSNR dB</th>" in html and "<td>identical</td>" in html
    assert f"<td>{rows['distilled']['psnr_db']:.2f}</td>" in html
