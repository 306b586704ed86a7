"""Batching through a real worker and a real redis-server: compatible jobs of one lane share the denoiser, and each
keeps its own events, result, cancel and failure handling (an out-of-memory batch retries its members alone)."""

from __future__ import annotations

from dataclasses import replace

from npc_video_client.contract import ErrorCode, JobStatus
from pipelines import families
from pipelines.families import WAN_I2V
from tests.support.jobs import envelope
from tests.support.streams import event_types, events, pending_count
from tests.support.waiting import wait_until

BATCH = {"max_batch": 3, "batch_wait_ms": 3_000}  # a lone job waits for company: the batch forms reliably


def progress_steps(redis_client, names, job_id: str) -> list[int]:
    return [event["step"] for event in events(redis_client, names, job_id) if event["type"] == "job:progress"]


def test_compatible_jobs_of_one_lane_run_as_one_batch_and_each_ends_on_its_own(
    start_worker, producer, redis_client, names
):
    members = [f"member-{index}" for index in range(3)]
    for index, job_id in enumerate(members):
        producer.submit(envelope(job_id, seed=index, expression=("smiling", "frowning", "laughing")[index], steps=3))
    producer.submit(envelope("urgent", steps=3), lane="high")  # compatible, but of another lane
    worker = start_worker(**BATCH)
    results = {job_id: producer.wait(job_id, timeout_s=120) for job_id in ["urgent", *members]}
    assert all(result.status == JobStatus.COMPLETED for result in results.values()), results
    assert results["urgent"].batch_size == 1  # a batch is formed only from the lane being served
    assert [results[job_id].batch_size for job_id in members] == [3, 3, 3]
    assert len({results[job_id].url for job_id in members}) == 3  # three videos, not one
    started = {results[job_id].timings.generate_started_at for job_id in members}
    assert len(started) == 1  # one device interval for the three
    for job_id in members:
        types = event_types(redis_client, names, job_id)
        assert types[0] == "job:processing" and types[-1] == "job:completed" and types.count("job:completed") == 1
        assert progress_steps(redis_client, names, job_id) == [1, 2, 3]
    completed = [event["job_id"] for event in events(redis_client, names) if event["type"] == "job:completed"]
    assert completed[0] == "urgent"
    wait_until(lambda: pending_count(redis_client, names) == 0, what="all acknowledged")
    assert worker.stop() == 0


def test_a_cancelled_member_leaves_the_batch_and_the_others_finish(start_worker, producer, redis_client, names):
    members = ["stay-1", "leave", "stay-2"]
    for index, job_id in enumerate(members):
        producer.submit(envelope(job_id, seed=index, steps=200, width=32, height=32))
    start_worker(**BATCH)
    wait_until(lambda: progress_steps(redis_client, names, "leave"), what="the batch's first step")
    producer.cancel("leave")
    cancelled = producer.wait("leave", timeout_s=120)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.error_code == ErrorCode.CANCELLED
    assert max(progress_steps(redis_client, names, "leave")) < 200
    for job_id in ("stay-1", "stay-2"):
        result = producer.wait(job_id, timeout_s=120)
        assert result.status == JobStatus.COMPLETED and result.batch_size == 3
        assert progress_steps(redis_client, names, job_id) == list(range(1, 201))
    assert event_types(redis_client, names, "leave")[-1] == "job:cancelled"


def test_an_out_of_memory_batch_retries_its_members_alone(start_worker, producer, redis_client, names, monkeypatch):
    monkeypatch.setitem(
        families.FAMILIES,
        "wan-i2v",
        replace(WAN_I2V, pipeline_class="tests.support.failing_pipelines:OneJobAtATimeWanPipeline"),
    )
    members = [f"oom-{index}" for index in range(3)]
    for index, job_id in enumerate(members):
        producer.submit(envelope(job_id, seed=index))
    start_worker(**BATCH)
    for job_id in members:
        result = producer.wait(job_id, timeout_s=120)
        assert result.status == JobStatus.COMPLETED, result.error_message
        assert result.batch_size == 1  # the second attempt ran alone
        failed = [event for event in events(redis_client, names, job_id) if event["type"] == "job:failed"]
        assert [(e["error_code"], e["retryable"], e["attempt"]) for e in failed] == [("out_of_memory", True, 1)]
        processing = [e["attempt"] for e in events(redis_client, names, job_id) if e["type"] == "job:processing"]
        assert processing == [1, 2]


def test_compatible_jobs_waiting_before_the_worker_starts_run_as_one_full_batch(
    start_worker, producer, redis_client, names
):
    """No wait for company is configured: the batch forms from the jobs already in the stream, because the device
    waits for the ones the intake has read and is preparing instead of starting with the first alone."""
    members = [f"waiting-{index}" for index in range(4)]
    for index, job_id in enumerate(members):
        producer.submit(envelope(job_id, seed=index, steps=2))
    worker = start_worker(max_batch=4, batch_wait_ms=0)
    results = [producer.wait(job_id, timeout_s=120) for job_id in members]
    assert all(result.status == JobStatus.COMPLETED for result in results), results
    assert [result.batch_size for result in results] == [4, 4, 4, 4]
    assert len({result.timings.generate_started_at for result in results}) == 1
    assert worker.stop() == 0
