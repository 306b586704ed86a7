"""`npc-worker bench --through queue`: a real redis-server and a real `npc-worker serve` child, timed as a producer
sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bench.queue import group_devices
from tests.bench.conftest import load_valid_results, npc_worker_bench

QUEUE_STAGES = {"queue", "prepare", "load", "generate", "encode", "upload", "transport"}


def test_queue_run_writes_the_four_files_with_what_a_producer_sees(queue_run: Path) -> None:
    for name in ("results.json", "results.csv", "plot.png", "report.html"):
        assert (queue_run / name).stat().st_size > 0
    results = load_valid_results(queue_run)
    assert results["environment"]["through"] == "queue"
    row, _stock = results["rows"]
    assert (row["model"], row["preset"], row["setting"], row["through"]) == ("tiny-wan", "realtime", "catalog", "queue")
    assert (row["runs"], row["steps"], row["width"], row["frames"], row["fps"]) == (2, 2, 64, 9, 16)  # generated
    assert {stage for stage, value in row["stages"].items() if value is not None} == QUEUE_STAGES
    assert row["stages"]["generate"] > 0 and row["stages"]["transport"] >= 0
    assert all(0 <= row["stages"][stage] <= row["max_ms"] for stage in QUEUE_STAGES - {"transport"})
    # per step from the worker's progress events: 2 steps give one step after the first per run
    assert row["s_per_step"] is not None and 0 < row["s_per_step"] * 1000 < row["stages"]["generate"]
    assert row["output_bytes"] > 0 and row["host_rss_bytes"] > 0  # the serve child's RSS
    assert row["flops_per_step"] > 0  # from the checkpoint's configs on disk
    html = (queue_run / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:video/mp4;base64,') == 2


def test_stock_is_the_bare_pipeline_call_in_the_bench_process(queue_run: Path) -> None:
    queued, stock = load_valid_results(queue_run)["rows"]
    assert (stock["setting"], stock["through"], stock["runs"]) == ("stock", "in-process", 2)
    assert {stage for stage, value in stock["stages"].items() if value is not None} == {"generate"}
    assert stock["p50_ms"] == pytest.approx(stock["stages"]["generate"])
    assert stock["s_per_step"] is None and stock["achieved_tflops"] is None  # no step callback on a bare call
    assert (stock["frames"], stock["width"], stock["cfg"]) == (queued["frames"], queued["width"], queued["cfg"])
    assert stock["output_bytes"] > 0 and stock["flops_per_step"] == queued["flops_per_step"]
    assert (queue_run / "catalogs" / "tiny-wan--stock.toml").is_file()
    assert not (queue_run / "logs" / "serve-tiny-wan--stock.log").exists()  # no serve child for stock


def test_the_serve_child_ran_under_its_own_prefix_and_left_no_keys(queue_run: Path, redis_url: str) -> None:
    log = (queue_run / "logs" / "serve-tiny-wan--catalog.log").read_text(encoding="utf-8")
    assert "bench-" in log  # the bench's jobs ran in that child
    client = redis.Redis.from_url(redis_url)
    assert list(client.scan_iter(match="npc-bench-*")) == []
    assert list(client.scan_iter(match="npc:*")) == []  # the default prefix was never used


def test_a_burst_with_worker_settings_reports_the_device_and_the_batches(
    tmp_path: Path, bench_catalog: Path, redis_url: str
) -> None:
    """`--burst 4` on a worker batching up to 3 (waiting 1 s for company): one batch of three, then one job
    alone; the serve child got the setting's worker values."""
    out = tmp_path / "out"
    run = npc_worker_bench(
        *("--catalog", str(bench_catalog), "--presets", "realtime", "--through", "queue", "--redis-url", redis_url),
        *("--setting", "b3:worker.max_batch=3,worker.batch_wait_ms=1000", "--burst", "4"),
        *("--repeats", "1", "--warmup", "0", "--override", "width=64 height=64 steps=2 duration=0.5"),
        *("--out", str(out)),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    results = load_valid_results(out)
    (row,) = results["rows"]
    burst = row["burst"]
    assert burst["jobs"] == 4 and burst["batch_sizes"] == {"1": 1, "3": 3}
    assert 0 < burst["busy_fraction"] <= 1 and burst["jobs_per_s"] > 0
    assert burst["gap_ms_p50"] is not None and burst["gap_ms_p50"] >= 0  # two device intervals: one gap
    assert results["environment"]["settings"][0]["worker_settings"] == {"max_batch": 3, "batch_wait_ms": 1000}
    header = (out / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"burst_jobs_per_s", "burst_busy_fraction", "burst_gap_ms_p50"} <= set(header)
    assert "burst: jobs/s, device busy, gap p50 ms" in (out / "report.html").read_text(encoding="utf-8")


def test_the_warm_scenario_reports_cold_warmed_and_busy_latencies_and_previews(
    tmp_path: Path, bench_catalog: Path, redis_url: str
) -> None:
    """`--warm 2`: after the row, reactions cold, warmed (cache hits) and behind a warm backlog, and two jobs with
    previews against two without; every figure present and in its own relation (warmed below cold)."""
    out = tmp_path / "out"
    run = npc_worker_bench(
        *("--catalog", str(bench_catalog), "--presets", "realtime", "--through", "queue", "--redis-url", redis_url),
        *("--warm", "2", "--repeats", "1", "--warmup", "0"),
        *("--override", "width=64 height=64 steps=3 duration=0.5", "--out", str(out)),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    (row,) = load_valid_results(out)["rows"]
    warm = row["warm"]
    assert (warm["reactions"], warm["backlog"]) == (2, 20)
    assert 0 < warm["warmed_p50_ms"] < warm["cold_p50_ms"]  # a warmed reaction is a cache hit
    assert 0 < warm["start_after_arrival_ms_p50"] <= warm["start_after_arrival_ms_max"] and warm["backlog_p50_ms"] > 0
    assert 0 < warm["cold_device_p50_ms"] <= warm["cold_p50_ms"]  # the device's part of each job, then encode, upload
    assert 0 < warm["backlog_device_p50_ms"] <= warm["backlog_p50_ms"]
    assert warm["backlog_vs_cold_p50"] > -1 and warm["backlog_device_vs_cold_p50"] > -1  # ratios of two positives
    assert warm["first_preview_after_first_step_ms"] is not None and warm["preview_step_overhead"] is not None
    assert warm["preview_steps_apart_p50"] is None or warm["preview_steps_apart_p50"] >= 1
    assert warm["preview_cpu_ms"] > 0 and 0 < warm["preview_cpu_share"] < 1  # the worker's counters moved
    header = (out / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"warm_cold_p50_ms", "warm_warmed_p50_ms", "warm_preview_step_overhead"} <= set(header)
    assert list(redis.Redis.from_url(redis_url).scan_iter(match="npc-bench-*")) == []
    assert "preview CPU share" in (out / "report.html").read_text(encoding="utf-8")


def test_a_group_setting_runs_the_serve_child_as_a_worker_group_with_the_same_video(
    tmp_path: Path, bench_catalog: Path, redis_url: str
) -> None:
    """`g2:worker.group_size=2`: the serve child is a group of two CPU ranks (`--devices cpu,cpu --group 2`), and
    its video is the one process's, to the bit (PSNR inf)."""
    out = tmp_path / "out"
    run = npc_worker_bench(
        *("--catalog", str(bench_catalog), "--presets", "realtime", "--through", "queue", "--redis-url", redis_url),
        *("--setting", "catalog", "--setting", "g2:worker.group_size=2", "--repeats", "1", "--warmup", "0"),
        *("--override", "width=64 height=64 steps=2 duration=0.5", "--out", str(out)),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    alone, group = load_valid_results(out)["rows"]
    assert (alone["setting"], group["setting"]) == ("catalog", "g2")
    assert group["psnr_db"] == "inf" and group["p50_ms"] > 0
    log = (out / "logs" / "serve-tiny-wan--g2.log").read_text(encoding="utf-8")
    assert "as rank 1 of 2 (gloo)" in log, log[-2000:]
    assert group_devices("cuda", 4) == ["--devices", "0,1,2,3", "--group", "4"]  # on GPUs: the first N
