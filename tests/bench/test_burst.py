"""What a burst reports, from the results' device intervals: a batch's shared interval counts once, cache hits
(no device work) add jobs but no interval, gaps are between consecutive intervals."""

from __future__ import annotations

import pytest

from bench.burst import device_intervals, measure
from npc_video_client.contract import JobResult, JobStatus, Timings


def result(started: float | None, ended: float | None, batch_size: int | None = 1) -> JobResult:
    timings = Timings(generate_started_at=started, generate_ended_at=ended)
    return JobResult(job_id="j", status=JobStatus.COMPLETED, timings=timings, batch_size=batch_size)


def test_a_batch_interval_counts_once_and_gaps_are_between_intervals():
    results = [
        result(1_000.0, 1_100.0),
        result(1_102.0, 1_300.0, batch_size=2),  # one batch of two: the same interval
        result(1_102.0, 1_300.0, batch_size=2),
        result(1_310.0, 1_400.0),
        result(None, None, batch_size=None),  # a cache hit: no device work
    ]
    assert device_intervals(results) == [(1_000.0, 1_100.0), (1_102.0, 1_300.0), (1_310.0, 1_400.0)]
    burst = measure(results, wall_ms=2_000.0)
    assert burst.jobs == 5 and burst.jobs_per_s == pytest.approx(2.5)
    assert burst.busy_fraction == pytest.approx((100 + 198 + 90) / 400)
    assert burst.gap_ms_p50 == pytest.approx(6.0)  # gaps 2 and 10
    assert burst.gap_ms_p95 == pytest.approx(9.6)
    assert burst.batch_sizes == {"1": 2, "2": 2}


def test_overlapping_intervals_give_no_negative_gap():
    burst = measure([result(0.0, 100.0), result(90.0, 150.0)], wall_ms=200.0)
    assert burst.gap_ms_p50 == 0.0


def test_without_device_work_there_is_no_busy_fraction_or_gap():
    burst = measure([result(None, None, batch_size=None)], wall_ms=50.0)
    assert burst.busy_fraction is None and burst.gap_ms_p50 is None and burst.gap_ms_p95 is None
    assert burst.batch_sizes == {} and burst.to_json()["jobs"] == 1
