"""The clients' 1.2 behaviour against a real redis-server: the queued state written with the XADD, status() of
unknown, queued, running and ended jobs, cancel outcomes, an ended id re-submitted, an unreachable Redis, and event
streams that end when their job has ended. The worker's own state writes are what tests/worker checks."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
import redis

from npc_video_client import (
    AsyncNpcVideoClient,
    CancelOutcome,
    JobAlreadyEnded,
    JobStateStatus,
    NpcVideoClient,
    RedisUnavailable,
    UnknownJob,
)
from npc_video_client.contract import JobCompletedEvent, JobResult, JobState, JobStatus
from npc_video_client.names import StreamNames
from npc_video_client.protocol import DEFAULT_STATE_TTL_S
from tests.support.jobs import envelope
from tests.support.redis_processes import free_port

NAMES = StreamNames("npc")


@pytest.fixture
def raw(redis_server: Any) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def client(redis_server: Any) -> NpcVideoClient:
    return NpcVideoClient(redis_server.url)


def end_like_a_worker(raw: redis.Redis, job_id: str, status: JobStatus = JobStatus.COMPLETED) -> JobResult:
    """The terminal write as far as a producer sees it: the result and its final event."""
    result = JobResult(job_id=job_id, status=status, url=f"file:///out/{job_id}.mp4", steps=2)
    raw.set(NAMES.result(job_id), result.model_dump_json(), ex=3600)
    if status == JobStatus.COMPLETED:
        event = JobCompletedEvent(**result.model_dump(), timestamp=2, worker="w")
        raw.xadd(NAMES.events, {"event": event.model_dump_json()})
    return result


def write_state(raw: redis.Redis, job_id: str, status: JobStateStatus, **fields: Any) -> None:
    raw.set(NAMES.state(job_id), JobState(job_id=job_id, status=status, updated_at=1, **fields).model_dump_json())


# -- submit writes the queued state ----------------------------------------------------------------------------


def test_submit_writes_the_queued_state_with_the_result_ttl(client, raw):
    before = int(time.time() * 1000)
    client.submit(envelope("s-1"))
    stored = json.loads(raw.get(NAMES.state("s-1")))
    assert stored["status"] == "queued" and stored["attempt"] == 0 and stored["progress"] == 0.0
    assert stored["contract_version"] == "1.2" and before <= stored["updated_at"] <= int(time.time() * 1000)
    assert DEFAULT_STATE_TTL_S - 5 < raw.ttl(NAMES.state("s-1")) <= DEFAULT_STATE_TTL_S == 7 * 24 * 3600
    assert client.status("s-1").status == JobStateStatus.QUEUED


def test_the_state_ttl_is_the_producers_choice_and_checked(redis_server, raw):
    NpcVideoClient(redis_server.url, state_ttl_s=120).submit(envelope("s-ttl"))
    assert 100 < raw.ttl(NAMES.state("s-ttl")) <= 120
    with pytest.raises(ValueError, match=r"state_ttl_s: must be a whole number of seconds, at least 1 \(got 0\)"):
        NpcVideoClient(redis_server.url, state_ttl_s=0)


def test_the_xadd_and_the_state_are_one_transaction(client, raw, redis_server):
    """MONITOR shows what the server executed: the XADD and the SET between one MULTI and its EXEC."""
    monitor = redis.Redis.from_url(redis_server.url).monitor()
    with monitor as watching:
        client.submit(envelope("s-tx"))
        commands: list[str] = []
        while not commands or commands[-1] != "EXEC":
            commands.append(str(watching.next_command()["command"]).split()[0].upper())
    assert commands[-4:] == ["MULTI", "XADD", "SET", "EXEC"]
    assert commands[-5] == "GET"  # the ended-id check, under WATCH


def test_a_submit_never_trims_a_lane(client, raw):
    client.submit(envelope("s-trim"))
    ((entry_id, _fields),) = raw.xrange(NAMES.lane("normal"))
    assert raw.xinfo_stream(NAMES.lane("normal"))["max-deleted-entry-id"] == b"0-0"
    assert entry_id  # one entry, nothing deleted: no MAXLEN on the XADD


def test_a_running_jobs_state_is_not_reset_by_a_duplicate_submit(client, raw):
    write_state(raw, "s-dup", JobStateStatus.RUNNING, progress=0.5, attempt=1)
    client.submit(envelope("s-dup"))
    assert client.status("s-dup").status == JobStateStatus.RUNNING and raw.xlen(NAMES.lane("normal")) == 1


def test_an_ended_job_id_is_refused_and_nothing_is_enqueued(client, raw):
    end_like_a_worker(raw, "s-over", JobStatus.FAILED)
    with pytest.raises(JobAlreadyEnded, match=r"job s-over already ended \(failed\); .* submit under a new job id"):
        client.submit(envelope("s-over"))
    assert raw.exists(NAMES.lane("normal")) == 0


def test_a_result_key_holding_no_result_does_not_count_as_ended(client, raw, caplog):
    """The worker runs such a job and replaces the value; the client submits, and status and cancel agree."""
    raw.set(NAMES.result("s-corrupt"), "not a result")
    with caplog.at_level("WARNING"):
        client.submit(envelope("s-corrupt"))
    assert "the result key of job s-corrupt holds no result" in caplog.text
    assert client.status("s-corrupt").status == JobStateStatus.QUEUED
    assert client.cancel("s-corrupt") is CancelOutcome.CANCELLED


def test_a_lane_that_does_not_exist_is_named(client):
    with pytest.raises(ValueError, match=r'lane: must be high, normal or low \(got "urgent"\)'):
        client.submit(envelope("s-lane"), lane="urgent")


# -- status ------------------------------------------------------------------------------------------------------


def test_status_tells_an_unknown_id_from_a_queued_one(client):
    with pytest.raises(UnknownJob, match="job never-sent is unknown"):
        client.status("never-sent")
    client.submit(envelope("sent"))
    assert client.status("sent").status == JobStateStatus.QUEUED


def test_status_returns_what_the_worker_wrote(client, raw):
    write_state(raw, "w-1", JobStateStatus.RUNNING, progress=0.75, step=3, steps=4, attempt=2, worker="gpu-a:cuda")
    state = client.status("w-1")
    assert (state.status, state.progress, state.step, state.steps, state.attempt, state.worker) == (
        "running", 0.75, 3, 4, 2, "gpu-a:cuda",
    )  # fmt: skip


def test_status_of_an_ended_job_whose_state_expired_comes_from_its_result(client, raw):
    end_like_a_worker(raw, "w-old")
    state = client.status("w-old")
    assert (state.status, state.progress) == (JobStateStatus.COMPLETED, 1.0)


# -- cancel --------------------------------------------------------------------------------------------------------


def test_cancel_says_what_it_did(client, raw):
    client.submit(envelope("c-queued"))
    assert client.cancel("c-queued", ttl_s=60) is CancelOutcome.CANCELLED
    assert 0 < raw.ttl(NAMES.cancel("c-queued")) <= 60
    end_like_a_worker(raw, "c-done")
    assert client.cancel("c-done") is CancelOutcome.ALREADY_ENDED and not raw.exists(NAMES.cancel("c-done"))
    write_state(raw, "c-final", JobStateStatus.EXPIRED)  # a final state whose result is gone
    assert client.cancel("c-final") is CancelOutcome.ALREADY_ENDED
    assert client.cancel("c-nobody", ttl_s=60) is CancelOutcome.UNKNOWN
    assert 0 < raw.ttl(NAMES.cancel("c-nobody")) <= 60  # set anyway, in case a 1.1 client submitted it


# -- an unreachable Redis ------------------------------------------------------------------------------------------


def test_an_unreachable_redis_is_one_typed_line_with_the_password_hidden():
    url = f"redis://producer:s3cret@127.0.0.1:{free_port()}/2"
    client = NpcVideoClient(url)
    calls = [
        lambda: client.submit(envelope("r-1")),
        lambda: client.status("r-1"),
        lambda: client.cancel("r-1"),
        lambda: client.result("r-1"),
        lambda: client.wait("r-1", timeout_s=0.1),
        client.events_cursor,
    ]
    for call in calls:
        with pytest.raises(RedisUnavailable) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"Redis at redis://producer:***@127.0.0.1:{url.rsplit(':', 1)[1]} is unreachable: ")
        assert "\n" not in message and "s3cret" not in message and " object at 0x" not in message
        assert isinstance(caught.value, redis.ConnectionError)  # code catching redis-py's errors still does


def test_the_async_client_says_the_same(redis_server):
    async def scenario() -> str:
        client = AsyncNpcVideoClient(f"redis://127.0.0.1:{free_port()}/0")
        try:
            await client.status("r-2")
        except RedisUnavailable as exc:
            return str(exc)
        finally:
            await client.close()
        return "no error"

    assert asyncio.run(scenario()).startswith("Redis at redis://127.0.0.1:")


# -- events of a job that ended ---------------------------------------------------------------------------------


def test_events_opened_after_the_job_ended_end_at_once(client, raw):
    end_like_a_worker(raw, "e-over")
    started = time.monotonic()
    assert list(client.events(job_id="e-over")) == []  # "$": after its final event; no block_ms: would wait forever
    assert time.monotonic() - started < 2


def test_events_read_from_the_start_still_give_the_ended_jobs_history(client, raw):
    end_like_a_worker(raw, "e-history")
    assert [event.type for event in client.events(job_id="e-history", since="0-0")] == ["job:completed"]


def test_events_end_when_the_job_ends_even_if_its_final_event_was_trimmed(client, raw):
    stream = client.events(job_id="e-trim")

    def end_without_a_final_event() -> None:
        end_like_a_worker(raw, "e-trim", JobStatus.CANCELLED)  # a result, its final event trimmed away
        raw.xadd(NAMES.events, {"event": "another writer's entry"})  # the blocked read returns: the stream asks

    threading.Timer(0.3, end_without_a_final_event).start()
    started = time.monotonic()
    assert list(stream) == []
    assert 0.25 < time.monotonic() - started < 5


def test_async_events_opened_after_the_end_end_at_once_on_a_decoding_connection(redis_server, raw):
    end_like_a_worker(raw, "e-async")

    async def scenario() -> list[str]:
        decoding = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        client = AsyncNpcVideoClient(client=decoding)
        try:
            late = [event.type async for event in await client.events(job_id="e-async")]
            history = [event.type async for event in await client.events(job_id="e-async", since="0-0")]
            state = await client.status("e-async")
            return [*late, "|", *history, state.status.value]
        finally:
            await client.close()

    assert asyncio.run(scenario()) == ["|", "job:completed", "completed"]
