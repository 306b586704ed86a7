"""The producer clients (sync and asyncio) against a real redis-server.

Where a test needs a job to end, it writes what a worker's terminal write leaves (docs/contract.md, section 3: the
result key, and from contract 1.1 on the completion list) with the contract's own models; tests/contract runs the
same client against a real worker.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
import redis

from npc_video_client import AsyncNpcVideoClient, CancelOutcome, JobRejected, JobStateStatus, NpcVideoClient, UnknownJob
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobEnvelope,
    JobFailedEvent,
    JobProgressEvent,
    JobResult,
    JobStatus,
)
from npc_video_client.names import StreamNames
from tests.support.jobs import envelope

NAMES = StreamNames("npc")


@pytest.fixture
def raw(redis_server: Any) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def client(redis_server: Any) -> NpcVideoClient:
    return NpcVideoClient(redis_server.url)


def completed(job_id: str, **fields: Any) -> JobResult:
    return JobResult(job_id=job_id, status=JobStatus.COMPLETED, url=f"file:///out/{job_id}.mp4", **fields)


def finish_like_a_worker(raw: redis.Redis, result: JobResult, *, completion_list: bool = True) -> None:
    """A 1.1 worker stores the result and pushes it to the completion list; a 1.0 worker only stores it."""
    body = result.model_dump_json()
    raw.set(NAMES.result(result.job_id), body, ex=3600)
    if completion_list:
        raw.rpush(NAMES.done(result.job_id), body)
        raw.expire(NAMES.done(result.job_id), 3600)


def add_event(raw: redis.Redis, event: Any) -> str:
    body = event if isinstance(event, str) else event.model_dump_json()
    return raw.xadd(NAMES.events, {"event": body}).decode()


def progress(job_id: str, step: int) -> JobProgressEvent:
    return JobProgressEvent(job_id=job_id, timestamp=1, worker="w", step=step, total_steps=2, progress=step / 2)


def queued_body(raw: redis.Redis, lane: str = "normal") -> dict[str, Any]:
    ((_entry_id, fields),) = raw.xrange(NAMES.lane(lane))
    body: dict[str, Any] = json.loads(fields[b"job"])
    return body


# -- submit -----------------------------------------------------------------------------------------------


def test_submit_stamps_the_contract_version_and_the_time(client, raw):
    before = int(time.time() * 1000)
    assert client.submit(envelope("v"), lane="high") == "v"
    body = queued_body(raw, "high")
    assert body["contract_version"] == CONTRACT_VERSION == "1.2"
    assert before <= body["submitted_at"] <= int(time.time() * 1000)


def test_submit_keeps_what_the_producer_set(client, raw):
    client.submit({**envelope("kept"), "contract_version": "1.0", "submitted_at": 5, "metadata": {"gen": 9}})
    body = queued_body(raw)
    assert (body["contract_version"], body["submitted_at"], body["metadata"]) == ("1.0", 5, {"gen": 9})


def test_submit_takes_a_model_and_sends_its_metadata(client, raw):
    model = JobEnvelope.model_validate({**envelope("model"), "metadata": {"generation_id": 41, "tags": ["x"]}})
    client.submit(model)
    body = queued_body(raw)
    assert body["metadata"] == {"generation_id": 41, "tags": ["x"]} and body["params"]["npc_id"] == "npc-7"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"contract_version": "2.0"}, "contract_version: major version 2"),
        ({"metadata": {f"k{i}": i for i in range(33)}}, "metadata: has 33 keys, over the limit of 32"),
        ({"metadata": {"blob": "x" * 5000}}, "over the limit of 4096"),
        ({"unknown_extra": {1, 2}}, "job: cannot be written as JSON"),
    ],
)
def test_submit_refuses_before_enqueueing(client, raw, change, needle):
    with pytest.raises(JobRejected, match=needle):
        client.submit({**envelope("refused"), **change})
    assert raw.exists(NAMES.lane("normal")) == 0


# -- status, result, cancel ---------------------------------------------------------------------------------


def test_status_and_result_give_the_stored_result(client, raw):
    result = completed("over", metadata={"gen": 1}, contract_version="1.1", steps=4)
    finish_like_a_worker(raw, result)
    assert client.result("over") == result
    state = client.status("over")  # no state key (a worker older than 1.2): described from the result
    assert (state.status, state.progress, state.step, state.steps) == (JobStateStatus.COMPLETED, 1.0, 4, 4)


def test_cancel_sets_an_expiring_key(client, raw):
    assert client.cancel("stop-me", ttl_s=90) is CancelOutcome.UNKNOWN  # no record of it: set anyway, it expires
    assert raw.get(NAMES.cancel("stop-me")) == b"1" and 0 < raw.ttl(NAMES.cancel("stop-me")) <= 90


# -- wait -----------------------------------------------------------------------------------------------------


def test_wait_wakes_on_the_completion_list_and_leaves_it_for_other_waiters(client, raw, redis_server):
    other = NpcVideoClient(redis_server.url)
    got: dict[str, tuple[JobResult, float]] = {}
    started = time.monotonic()

    def waiter(name: str, who: NpcVideoClient) -> None:
        result = who.wait("shared", timeout_s=30, poll_s=8)  # the result key is not polled in time
        got[name] = (result, time.monotonic() - started)

    threads = [threading.Thread(target=waiter, args=(n, c)) for n, c in (("a", client), ("b", other))]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    finish_like_a_worker(raw, completed("shared"))
    for thread in threads:
        thread.join(30)
    assert set(got) == {"a", "b"}
    assert got["a"][0] == got["b"][0] == completed("shared")
    assert max(elapsed for _, elapsed in got.values()) < 5  # woken by the push, not by polling
    assert raw.llen(NAMES.done("shared")) == 1  # nothing was consumed
    assert client.wait("shared", timeout_s=1) == completed("shared")  # a late waiter gets it too


def test_wait_reads_the_result_key_of_a_1_0_worker(client, raw):
    threading.Timer(0.2, lambda: finish_like_a_worker(raw, completed("old"), completion_list=False)).start()
    assert client.wait("old", timeout_s=20, poll_s=0.1) == completed("old")
    assert raw.exists(NAMES.done("old")) == 0


def test_wait_gives_up_after_its_timeout(client):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no result for job never after 0\.3 s"):
        client.wait("never", timeout_s=0.3, poll_s=0.1)
    assert 0.25 < time.monotonic() - started < 3


# -- events ---------------------------------------------------------------------------------------------------


def test_events_cursor_is_the_last_entry_of_the_stream(client, raw):
    assert client.events_cursor() == "0-0"  # no stream yet
    first = add_event(raw, progress("a", 1))
    assert client.events_cursor() == first
    raw.xdel(NAMES.events, first)  # trimmed away: the cursor still marks the point reached
    assert client.events_cursor() == first


def test_events_of_one_job_end_with_its_final_event(client, raw):
    stream = client.events(job_id="a", block_ms=3000)  # "$" is fixed now, before anything is added
    add_event(raw, progress("a", 1))
    add_event(raw, progress("other", 1))
    add_event(raw, '{"type": "job:thinking", "job_id": "a", "status": "processing"}')  # a newer minor's type
    add_event(raw, "not json")
    failed = JobFailedEvent(
        job_id="a",
        timestamp=2,
        worker="w",
        error_code=ErrorCode.OUT_OF_MEMORY,
        error_message="retrying",
        retryable=True,
        attempt=1,
    )
    add_event(raw, failed)
    last = add_event(
        raw, JobCompletedEvent(**completed("a", metadata={"gen": 3}).model_dump(), timestamp=3, worker="w")
    )
    add_event(raw, progress("a", 2))  # after the final event: not read
    events = list(stream)
    assert [event.type for event in events] == ["job:progress", "job:failed", "job:completed"]
    assert events[-1].metadata == {"gen": 3} and events[-1].url == "file:///out/a.mp4"
    assert stream.cursor == last


def test_events_of_all_jobs_end_when_idle_and_resume_from_the_cursor(client, raw):
    start = client.events_cursor()
    add_event(raw, progress("a", 1))
    second = add_event(raw, JobCancelledEvent(job_id="b", timestamp=1, worker="w"))
    began = time.monotonic()
    stream = client.events(since=start, block_ms=300)
    assert [(event.type, event.job_id) for event in stream] == [("job:progress", "a"), ("job:cancelled", "b")]
    assert 0.25 < time.monotonic() - began < 5 and stream.cursor == second
    add_event(raw, progress("c", 2))
    assert [event.job_id for event in client.events(since=stream.cursor, block_ms=100)] == ["c"]


def test_a_client_on_a_decoding_connection_works_too(redis_server, raw):
    decoding = NpcVideoClient(client=redis.Redis.from_url(redis_server.url, decode_responses=True))
    stream = decoding.events(job_id="d", block_ms=2000)
    add_event(raw, JobCancelledEvent(job_id="d", timestamp=1, worker="w"))
    finish_like_a_worker(raw, completed("d"))
    assert [event.type for event in stream] == ["job:cancelled"]
    assert decoding.wait("d", timeout_s=5) == completed("d")
    assert decoding.status("d").status == JobStateStatus.COMPLETED


# -- asyncio ----------------------------------------------------------------------------------------------------


def test_the_async_client_has_the_same_api(redis_server, raw):
    async def scenario() -> None:
        client = AsyncNpcVideoClient(redis_server.url)
        try:
            stream = await client.events(job_id="as", block_ms=5000)
            assert await client.submit({**envelope("as"), "metadata": {"gen": 5}}, lane="low") == "as"
            assert queued_body(raw, "low")["contract_version"] == CONTRACT_VERSION
            assert (await client.status("as")).status == JobStateStatus.QUEUED
            with pytest.raises(UnknownJob, match="job nobody is unknown"):
                await client.status("nobody")
            with pytest.raises(JobRejected, match="metadata"):
                await client.submit({**envelope("bad"), "metadata": "gen-5"})
            assert await client.cancel("as", ttl_s=30) is CancelOutcome.CANCELLED
            assert 0 < raw.ttl(NAMES.cancel("as")) <= 30

            async def finish_later() -> None:
                await asyncio.sleep(0.2)
                add_event(raw, progress("as", 1))
                add_event(raw, JobCancelledEvent(job_id="as", timestamp=1, worker="w", metadata={"gen": 5}))
                finish_like_a_worker(raw, completed("as"))

            finishing = asyncio.create_task(finish_later())
            results = await asyncio.gather(client.wait("as", timeout_s=10, poll_s=8), client.wait("as", timeout_s=10))
            await finishing
            assert results == [completed("as"), completed("as")]
            assert [event.type async for event in stream] == ["job:progress", "job:cancelled"]
            assert await client.result("as") == completed("as")
            assert (await client.status("as")).status == JobStateStatus.COMPLETED
            assert await client.cancel("as") is CancelOutcome.ALREADY_ENDED
            with pytest.raises(TimeoutError):
                await client.wait("never", timeout_s=0.2, poll_s=0.05)
        finally:
            await client.close()

    asyncio.run(scenario())
