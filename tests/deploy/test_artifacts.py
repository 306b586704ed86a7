"""The helpers the deployment tests rely on: the PromQL scanner must find metric names, and only those."""

from __future__ import annotations

import time

import pytest

from npc_video_client.names import LANES_BY_PRIORITY
from tests.deploy.artifacts import (
    WORKER_SERIES,
    is_worker_series,
    series_names,
    setting_env_names,
    unknown_worker_env,
)
from worker.metrics import QueueReading, WorkerMetrics


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (outcome) (rate(npc_jobs_total[5m]))", {"npc_jobs_total"}),
        (
            'histogram_quantile(0.95, sum by (le, model) (rate(npc_job_phase_seconds_bucket{phase="total"}[5m])))',
            {"npc_job_phase_seconds_bucket"},
        ),
        ("max(npc_dead_letters) > max(npc_dead_letters offset 15m)", {"npc_dead_letters"}),
        (
            'max(a_metric) > 0 or max(b_metric{x="y"}) > 0 unless on () sum(c_metric{state="ready"}) > 0',
            {"a_metric", "b_metric", "c_metric"},
        ),
        ("x_total / ignoring(lane) group_left y_total > 1e-3 and bool 2", {"x_total", "y_total"}),
        ('count by (version) (npc_build_info{device=~"cuda.*"})', {"npc_build_info"}),
    ],
)
def test_series_names_finds_metrics_not_functions_labels_or_durations(expr: str, names: set[str]) -> None:
    assert series_names(expr) == names


def test_worker_series_accepts_histogram_suffixes_and_standard_collectors_only() -> None:
    assert is_worker_series("npc_job_phase_seconds_bucket")
    assert is_worker_series("process_resident_memory_bytes")
    assert not is_worker_series("npc_job_phase_seconds")  # a histogram is queried through its suffixed series
    assert not is_worker_series("npc_jobs")


def test_setting_env_names_follow_the_settings_prefix() -> None:
    names = setting_env_names()
    assert "NPC_WORKER_REDIS_URL" in names
    assert unknown_worker_env(["NPC_WORKER_REDIS_URL", "NPC_WORKER_NO_SUCH_THING", "AWS_REGION"]) == [
        "NPC_WORKER_NO_SUCH_THING"
    ]


def test_worker_series_are_what_the_worker_exposes() -> None:
    """The dashboard and the alerts query WORKER_SERIES; the worker's own registry must publish every one."""
    lanes = [lane.value for lane in LANES_BY_PRIORITY]
    metrics = WorkerMetrics(
        models=["m"], build={"version": "0", "contract_version": "1", "torch": "t", "diffusers": "d", "device": "cpu"}
    )
    metrics.watch_heartbeat(time.monotonic)
    metrics.watch_queue(lambda: QueueReading({lane: 0.0 for lane in lanes}, {lane: 0.0 for lane in lanes}, 0.0), lanes)
    metrics.watch_model_counts(lambda: {"m": {}})
    metrics.watch_device_memory(lambda kind: 0.0)
    exposed = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    assert exposed >= WORKER_SERIES, sorted(WORKER_SERIES - exposed)
    assert any(name.startswith("process_") for name in exposed) and any(name.startswith("python_") for name in exposed)
