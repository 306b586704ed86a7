"""The per-job state (contract 1.2) through a real worker and redis-server: what a polling producer sees from submit
to the end, for a completed, a retried, a cancelled, a refused and a raw-XADD job."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from npc_video_client.client import UnknownJob
from npc_video_client.contract import ErrorCode, JobState, JobStateStatus, JobStatus
from pipelines import families
from pipelines.families import WAN_I2V
from tests.support.failing_pipelines import OutOfMemoryWanPipeline
from tests.support.jobs import envelope
from tests.support.waiting import wait_until


@contextmanager
def polled_states(producer, job_id: str) -> Iterator[list[JobState]]:
    """Every distinct state the job's key held, polled as a producer would (as often as it can), up to the final one
    (the poller stops by itself there; leaving the block waits for it)."""
    seen: list[JobState] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                state = producer.status(job_id)
            except UnknownJob:
                continue
            if not seen or state != seen[-1]:
                seen.append(state)
            if state.final:
                return

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield seen
    finally:
        thread.join(10)
        stop.set()
        thread.join(10)


def test_a_completed_job_goes_queued_running_with_rising_progress_completed(start_worker, producer):
    producer.submit(envelope("tracked", steps=6))
    first = producer.status("tracked")
    assert (first.status, first.attempt, first.progress, first.worker) == (JobStateStatus.QUEUED, 0, 0.0, None)
    with polled_states(producer, "tracked") as seen:
        start_worker()
        assert producer.wait("tracked", timeout_s=60).status == JobStatus.COMPLETED
    statuses = [state.status for state in seen]
    assert statuses[0] == JobStateStatus.QUEUED and statuses[-1] == JobStateStatus.COMPLETED
    running = [state for state in seen if state.status == JobStateStatus.RUNNING]
    assert running and all(state.attempt == 1 and state.worker == "worker-a" for state in running)
    progress = [state.progress for state in running]
    assert progress == sorted(progress) and len(set(progress)) >= 2  # it rises while the job runs
    final = seen[-1]
    assert (final.progress, final.step, final.steps, final.attempt) == (1.0, 6, 6, 1)
    assert final.error_code is None and final.worker == "worker-a"


def test_a_retried_job_shows_retrying_then_its_end(start_worker, producer, monkeypatch):
    monkeypatch.setitem(
        families.FAMILIES,
        "wan-i2v",
        replace(WAN_I2V, pipeline_class="tests.support.failing_pipelines:OutOfMemoryWanPipeline"),
    )
    monkeypatch.setattr(OutOfMemoryWanPipeline, "calls", 0)
    monkeypatch.setattr(OutOfMemoryWanPipeline, "failures", 1)
    with polled_states(producer, "retried") as seen:
        producer.submit(envelope("retried"))
        start_worker(retry_backoff_ms=500)
        assert producer.wait("retried", timeout_s=60).status == JobStatus.COMPLETED
    retrying = [state for state in seen if state.status == JobStateStatus.RETRYING]
    assert [(state.attempt, state.error_code) for state in retrying] == [(1, ErrorCode.OUT_OF_MEMORY)]
    assert seen[-1].status == JobStateStatus.COMPLETED and seen[-1].attempt == 2


def test_a_cancelled_job_ends_cancelled_at_the_step_it_reached(start_worker, producer):
    producer.submit(envelope("stopped", steps=200, width=32, height=32))
    start_worker()
    with polled_states(producer, "stopped") as seen:
        wait_until(
            lambda: any(state.status == JobStateStatus.RUNNING and state.step for state in seen),
            what="the job's first steps",
        )
        producer.cancel("stopped")
        assert producer.wait("stopped", timeout_s=60).status == JobStatus.CANCELLED
    final = producer.status("stopped")
    assert final.status == JobStateStatus.CANCELLED and final.error_code == ErrorCode.CANCELLED
    assert final.step is not None and 0 < final.step < 200 and final.progress == pytest.approx(final.step / 200)


def test_a_refused_payload_ends_failed_and_a_raw_xadd_job_gets_a_state_from_the_worker(
    start_worker, producer, redis_client, names
):
    bad = envelope("refused")
    bad["params"]["intensity"] = 7
    redis_client.xadd(names.lane("normal"), {"job": json.dumps(bad)})  # another language's producer: no state
    redis_client.xadd(names.lane("normal"), {"job": json.dumps(envelope("raw"))})
    with pytest.raises(UnknownJob):
        producer.status("raw")
    start_worker()
    assert producer.wait("raw", timeout_s=60).status == JobStatus.COMPLETED
    assert producer.status("raw").status == JobStateStatus.COMPLETED
    refused = producer.status("refused")
    assert (refused.status, refused.error_code, refused.attempt) == (
        JobStateStatus.FAILED,
        ErrorCode.INVALID_PARAMS,
        0,
    )
    assert "intensity" in (refused.error_message or "")
