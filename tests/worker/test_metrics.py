"""worker.metrics: disjoint job outcomes, series that exist from the start, queue figures honest during outages."""

from __future__ import annotations

import math
import time

import pytest
from prometheus_client import generate_latest

from npc_video_client.contract import RETRYABLE_CODES, ErrorCode, JobResult, JobStatus, QualityPreset, Timings
from npc_video_client.names import GROUP, LANES_BY_PRIORITY
from tests.support.streams import create_groups
from worker.metrics import OUTCOME_LABELS, PHASES, WorkerMetrics
from worker.queue.depth import read_queue
from worker.state import WorkerState

LANES = [lane.value for lane in LANES_BY_PRIORITY]


def jobs_total(metrics: WorkerMetrics) -> dict[tuple[str, str], float]:
    """(outcome, error_code) -> value of every npc_jobs_total series."""
    values = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "npc_jobs_total":
                values[(sample.labels["outcome"], sample.labels["error_code"])] = sample.value
    return values


def result(status: JobStatus, code: ErrorCode | None = None, *, cache_hit: bool = False) -> JobResult:
    return JobResult(
        job_id="j",
        status=status,
        error_code=code,
        error_message="x" if code else None,
        cache_hit=cache_hit,
        model="tiny-wan",
        preset=QualityPreset.FAST,
        timings=Timings(prepare_ms=20, load_ms=5, generate_ms=400, encode_ms=30, upload_ms=10, total_ms=460),
    )


ENDINGS = [
    (result(JobStatus.COMPLETED), ("completed", "")),
    (result(JobStatus.COMPLETED, cache_hit=True), ("cache_hit", "")),
    *(
        (result(JobStatus.FAILED, code), ("failed", code.value))
        for code in (ErrorCode.INVALID_PARAMS, ErrorCode.OUT_OF_MEMORY)
    ),
    (result(JobStatus.EXPIRED, ErrorCode.DEADLINE_EXCEEDED), ("expired", "deadline_exceeded")),
    (result(JobStatus.CANCELLED, ErrorCode.CANCELLED), ("cancelled", "cancelled")),
]


def test_every_labelled_series_exists_at_zero_from_the_start():
    metrics = WorkerMetrics(models=["tiny-wan"])
    assert jobs_total(metrics) == {labels: 0.0 for labels in OUTCOME_LABELS}
    text = generate_latest(metrics.registry).decode()
    for code in RETRYABLE_CODES:
        assert f'npc_job_retries_total{{error_code="{code.value}"}} 0.0' in text
    assert "npc_duplicate_entries_total 0.0" in text
    for preset in QualityPreset:
        for phase in PHASES:
            labels = f'model="tiny-wan",phase="{phase}",preset="{preset.value}"'
            assert f"npc_job_phase_seconds_count{{{labels}}} 0.0" in text
    assert 'npc_model_load_seconds_count{model="tiny-wan"} 0.0' in text
    assert 'npc_worker_state{state="new"} 1.0' in text and 'npc_worker_state{state="ready"} 0.0' in text


def test_outcome_labels_cover_every_error_code_once():
    codes = [code for outcome, code in OUTCOME_LABELS if outcome in ("failed", "expired", "cancelled")]
    assert sorted(codes) == sorted(code.value for code in ErrorCode)
    assert len(set(OUTCOME_LABELS)) == len(OUTCOME_LABELS)


@pytest.mark.parametrize(("ended", "labels"), ENDINGS, ids=[labels[0] + labels[1] for _r, labels in ENDINGS])
def test_one_job_adds_exactly_one_across_outcome_labels(ended, labels):
    metrics = WorkerMetrics()
    before = jobs_total(metrics)
    metrics.observe_final(ended)
    after = jobs_total(metrics)
    assert sum(after.values()) - sum(before.values()) == 1
    assert after[labels] == 1.0
    assert {key for key in after if after[key] != before[key]} == {labels}


def test_a_completed_job_observes_its_phases_and_a_failed_one_does_not():
    metrics = WorkerMetrics()
    metrics.observe_final(result(JobStatus.COMPLETED))
    metrics.observe_final(result(JobStatus.FAILED, ErrorCode.INTERNAL_ERROR))
    labels = {"model": "tiny-wan", "preset": "fast"}
    registry = metrics.registry
    assert registry.get_sample_value("npc_job_phase_seconds_count", {**labels, "phase": "generate"}) == 1.0
    assert registry.get_sample_value("npc_job_phase_seconds_sum", {**labels, "phase": "generate"}) == 0.4
    assert registry.get_sample_value("npc_model_load_seconds_count", {"model": "tiny-wan"}) == 1.0
    assert registry.get_sample_value("npc_model_swap_seconds_count", {"model": "tiny-wan"}) is None  # swap_ms 0


def test_retries_are_counted_apart_from_outcomes():
    metrics = WorkerMetrics()
    metrics.observe_retry(ErrorCode.OUT_OF_MEMORY)
    assert metrics.registry.get_sample_value("npc_job_retries_total", {"error_code": "out_of_memory"}) == 1.0
    assert sum(jobs_total(metrics).values()) == 0


def test_exactly_one_state_is_set():
    metrics = WorkerMetrics()
    metrics.set_state(WorkerState.DRAINING)
    values = {
        state: metrics.registry.get_sample_value("npc_worker_state", {"state": state.value}) for state in WorkerState
    }
    assert values == {state: 1.0 if state is WorkerState.DRAINING else 0.0 for state in WorkerState}


def test_queue_figures_are_read_from_redis_at_scrape_time(redis_client, names):
    metrics = WorkerMetrics()
    metrics.watch_queue(lambda: read_queue(redis_client, names), LANES)
    create_groups(redis_client, names)
    for _ in range(3):
        redis_client.xadd(names.lane("normal"), {"job": "x"})
    redis_client.xreadgroup(GROUP, "c1", {names.lane("normal"): ">"}, count=1)
    redis_client.xadd(names.dead, {"job": "x", "error": "{}"})
    registry = metrics.registry
    assert registry.get_sample_value("npc_redis_up") == 1.0
    assert registry.get_sample_value("npc_queue_depth", {"lane": "normal"}) == 3.0
    assert registry.get_sample_value("npc_queue_depth", {"lane": "high"}) == 0.0
    assert registry.get_sample_value("npc_dead_letters") == 1.0
    assert 0.0 <= registry.get_sample_value("npc_oldest_pending_age_seconds", {"lane": "normal"}) < 60


def test_during_a_redis_outage_the_queue_collector_reports_down_and_nan(redis_server, redis_client, names):
    metrics = WorkerMetrics()
    metrics.watch_queue(lambda: read_queue(redis_client, names), LANES)
    redis_server.stop()
    text = generate_latest(metrics.registry).decode()  # the scrape itself succeeds
    assert "npc_redis_up 0.0" in text
    registry = metrics.registry
    for lane in LANES:
        assert math.isnan(registry.get_sample_value("npc_queue_depth", {"lane": lane}))
        assert math.isnan(registry.get_sample_value("npc_oldest_pending_age_seconds", {"lane": lane}))
    assert math.isnan(registry.get_sample_value("npc_dead_letters"))
    redis_server.start()
    assert registry.get_sample_value("npc_redis_up") == 1.0
    assert registry.get_sample_value("npc_queue_depth", {"lane": "low"}) == 0.0


def test_heartbeat_age_and_device_memory_are_read_at_scrape_time():
    metrics = WorkerMetrics()
    beat = [0.0]
    metrics.watch_heartbeat(lambda: beat[0])
    metrics.watch_device_memory(lambda kind: {"allocated": 1.0, "reserved": 2.0, "total": 3.0, "peak": 4.0}[kind])
    beat[0] = time.monotonic() - 7
    assert metrics.registry.get_sample_value("npc_heartbeat_age_seconds") == pytest.approx(7, abs=1)
    assert metrics.registry.get_sample_value("npc_device_memory_bytes", {"kind": "peak"}) == 4.0


def test_the_group_size_gauge_says_how_many_devices_each_job_runs_on():
    assert "npc_worker_group_size 1.0" in generate_latest(WorkerMetrics().registry).decode()
    assert "npc_worker_group_size 4.0" in generate_latest(WorkerMetrics(group_size=4).registry).decode()
