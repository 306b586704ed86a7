"""worker.queue.outcomes against a real redis-server: one terminal write per job, never replaced, always acked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from npc_video_client.contract import (
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobResult,
    JobState,
    JobStateStatus,
    JobStatus,
)
from npc_video_client.errors import JobError
from npc_video_client.names import GROUP, Lane, StreamNames
from tests.support.streams import dead_letters, events, final_events
from tests.support.waiting import wait_until
from worker.queue.job_state import JobStates, Progress, StateWrite
from worker.queue.leases import Lease, Leases
from worker.queue.outcomes import Outcomes, Retention, dead_letter_error

RETENTION = Retention(result_ttl_s=3600, events_maxlen=1000, dead_maxlen=1000, completion_ttl_s=600, channel=None)


def make_outcomes(redis_client, names, retention: Retention = RETENTION) -> Outcomes:
    return Outcomes(redis_client, names, retention)


def delivered(redis_client, names, job: str, lane: Lane = Lane.NORMAL) -> Lease:
    """An entry delivered to consumer c1, as the worker holds it."""
    leases = Leases(redis_client, names, "c1", 60_000)
    leases.ensure_groups()
    redis_client.xadd(names.lane(lane), {"job": job})
    (lease,) = leases.read_new([lane], count=1, block_ms=None)
    return lease


def completed(job_id: str, url: str = "file:///out/a.mp4") -> JobResult:
    return JobResult(job_id=job_id, status=JobStatus.COMPLETED, url=url, model="tiny-wan")


def completed_event(result: JobResult) -> BaseModel:
    return JobCompletedEvent(timestamp=1, worker="c1", **result.model_dump(exclude={"status"}))


def failed(job_id: str, code: ErrorCode = ErrorCode.INVALID_PARAMS) -> tuple[JobResult, BaseModel]:
    result = JobResult(job_id=job_id, status=JobStatus.FAILED, error_code=code, error_message="bad")
    event = JobFailedEvent(
        job_id=job_id, timestamp=1, worker="c1", error_code=code, error_message="bad", retryable=False, attempt=1
    )
    return result, event


def entry_is_settled(redis_client, lease: Lease) -> bool:
    """Acknowledged (not pending) and deleted from its lane stream."""
    info: Any = redis_client.xpending(lease.stream, GROUP)
    return info["pending"] == 0 and redis_client.xrange(lease.stream, min=lease.entry_id, max=lease.entry_id) == []


def test_finish_writes_result_event_completion_list_and_settles_the_entry(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, '{"job_id": "ok"}')
    for key in (names.cancel("ok"), names.attempts("ok")):
        redis_client.set(key, 1)
    redis_client.set(names.running("ok"), "tok")
    result = completed("ok")
    assert outcomes.finish(lease, "ok", completed_event(result), result=result, token="tok") is True
    assert JobResult.model_validate_json(redis_client.get(names.result("ok"))) == result
    assert 0 < redis_client.ttl(names.result("ok")) <= 3600
    assert [JobResult.model_validate_json(item) for item in redis_client.lrange(names.done("ok"), 0, -1)] == [result]
    assert 0 < redis_client.ttl(names.done("ok")) <= 600
    assert [event["type"] for event in events(redis_client, names, "ok")] == ["job:completed"]
    assert dead_letters(redis_client, names) == []
    for key in (names.cancel("ok"), names.attempts("ok"), names.running("ok")):
        assert not redis_client.exists(key), key
    assert entry_is_settled(redis_client, lease)


def test_a_final_failure_is_dead_lettered_with_its_payload_error_and_source(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, '{"job_id": "bad"}', Lane.HIGH)
    result, event = failed("bad")
    error = dead_letter_error("bad", "invalid_params", "bad", 1)
    assert outcomes.finish(lease, "bad", event, result=result, dead_error=error) is True
    (dead,) = dead_letters(redis_client, names)
    assert dead["job"] == b'{"job_id": "bad"}'
    assert dead["error"] == {"job_id": "bad", "error_code": "invalid_params", "error_message": "bad", "attempt": 1}
    source: Any = redis_client.xrange(names.dead)[0][1][b"source"]
    assert source.decode() == f"{names.lane('high')}/{lease.entry_id}"
    assert JobResult.model_validate_json(redis_client.get(names.result("bad"))).status == JobStatus.FAILED
    assert entry_is_settled(redis_client, lease)


def test_finish_leaves_a_lock_held_by_another_run_alone(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, "x")
    redis_client.set(names.running("job"), "someone-else")
    result = completed("job")
    outcomes.finish(lease, "job", completed_event(result), result=result, token="mine")
    assert redis_client.get(names.running("job")) == b"someone-else"


def second_outcome(kind: str, job_id: str) -> tuple[JobResult, BaseModel]:
    if kind == "completed":
        result = completed(job_id, url="file:///out/other.mp4")
        return result, completed_event(result)
    if kind == "cancelled":
        result = JobResult(job_id=job_id, status=JobStatus.CANCELLED, error_code=ErrorCode.CANCELLED)
        return result, JobCancelledEvent(job_id=job_id, timestamp=2, worker="c2")
    return failed(job_id, ErrorCode.INTERNAL_ERROR)


@pytest.mark.parametrize("kind", ["completed", "failed", "cancelled"])
def test_a_second_finish_of_a_job_only_acknowledges_its_entry(redis_client, names, kind):
    outcomes = make_outcomes(redis_client, names)
    first_lease = delivered(redis_client, names, "first")
    first = completed("dup")
    assert outcomes.finish(first_lease, "dup", completed_event(first), result=first) is True
    stored = redis_client.get(names.result("dup"))
    late_lease = delivered(redis_client, names, "second")
    result, event = second_outcome(kind, "dup")
    dead = dead_letter_error("dup", "internal_error", "bad", 2) if kind == "failed" else None
    assert outcomes.finish(late_lease, "dup", event, result=result, dead_error=dead) is False
    assert redis_client.get(names.result("dup")) == stored  # a completed result is never replaced
    assert len(final_events(redis_client, names, "dup")) == 1
    assert redis_client.llen(names.done("dup")) == 1
    assert dead_letters(redis_client, names) == []
    assert entry_is_settled(redis_client, late_lease)


def test_a_job_without_a_usable_id_gets_an_event_and_a_dead_letter_but_no_result(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, "not json")
    job_id = f"unknown:normal:{lease.entry_id}"
    _result, event = failed(job_id)
    error = dead_letter_error(job_id, "invalid_params", "bad", 0)
    assert outcomes.finish(lease, job_id, event, result=None, dead_error=error) is True
    assert redis_client.keys(f"{names.prefix}:result:*") == []
    assert redis_client.keys(f"{names.prefix}:done:*") == []
    assert [event["job_id"] for event in events(redis_client, names)] == [job_id]
    assert len(dead_letters(redis_client, names)) == 1
    assert entry_is_settled(redis_client, lease)


def test_finish_works_after_redis_lost_the_group_and_stream(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, '{"job_id": "from-memory"}')
    redis_client.flushall()  # a restart without persistence
    result = completed("from-memory")
    assert outcomes.finish(lease, "from-memory", completed_event(result), result=result) is True
    assert JobResult.model_validate_json(redis_client.get(names.result("from-memory"))) == result
    assert [event["type"] for event in events(redis_client, names, "from-memory")] == ["job:completed"]


def test_final_events_are_mirrored_on_the_channel(redis_client, names):
    outcomes = make_outcomes(
        redis_client,
        names,
        Retention(result_ttl_s=60, events_maxlen=100, dead_maxlen=100, completion_ttl_s=60, channel="npc-events"),
    )
    pubsub = redis_client.pubsub()
    pubsub.subscribe("npc-events")
    wait_until(lambda: pubsub.get_message(timeout=0.1), what="subscribed")
    lease = delivered(redis_client, names, "x")
    result = completed("pub")
    outcomes.finish(lease, "pub", completed_event(result), result=result)
    message = wait_until(lambda: pubsub.get_message(timeout=0.1), what="published event")
    assert json.loads(message["data"])["type"] == "job:completed"
    pubsub.close()


def retrying_state(job_id: str, attempt: int) -> StateWrite:
    error = JobError(ErrorCode.OUT_OF_MEMORY, "oom")
    return JobStates(StreamNames("npc"), "c1", 3600).retrying(job_id, attempt, Progress(3, 8), error)


def retryable_event(job_id: str, attempt: int) -> BaseModel:
    return JobFailedEvent(
        job_id=job_id,
        timestamp=1,
        worker="c1",
        error_code=ErrorCode.OUT_OF_MEMORY,
        error_message="oom",
        retryable=True,
        attempt=attempt,
    )


def test_attempt_failed_reports_a_retryable_failure_and_lets_go_of_the_lock(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    redis_client.set(names.running("job"), "tok")
    redis_client.set(names.attempts("job"), 1)
    assert outcomes.attempt_failed("job", retryable_event("job", 1), "tok", retrying_state("job", 1)) is True
    (event,) = events(redis_client, names, "job")
    assert (event["type"], event["retryable"], event["attempt"]) == ("job:failed", True, 1)
    state = JobState.model_validate_json(redis_client.get(names.state("job")))
    assert (state.status, state.attempt, state.step, state.steps, state.progress) == (
        JobStateStatus.RETRYING,
        1,
        3,
        8,
        0.375,
    )
    assert (state.error_code, state.error_message, state.worker) == (ErrorCode.OUT_OF_MEMORY, "oom", "c1")
    assert 3590 < redis_client.ttl(names.state("job")) <= 3600
    assert not redis_client.exists(names.running("job"))
    assert redis_client.get(names.attempts("job")) == b"1"  # the next run counts on from here
    assert not redis_client.exists(names.result("job"))
    assert final_events(redis_client, names, "job") == []


def test_attempt_failed_keeps_a_lock_it_does_not_hold(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    redis_client.set(names.running("job"), "other")
    outcomes.attempt_failed("job", retryable_event("job", 1), "tok", retrying_state("job", 1))
    assert redis_client.get(names.running("job")) == b"other"


def test_attempt_failed_does_nothing_once_the_job_is_final(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, "x")
    result = completed("job")
    final = JobStates(StreamNames("npc"), "c1", 3600).final(result, 1, Progress(8, 8))
    outcomes.finish(lease, "job", completed_event(result), result=result, state=final)
    redis_client.set(names.running("job"), "late-run")
    assert outcomes.attempt_failed("job", retryable_event("job", 2), "late-run", retrying_state("job", 2)) is False
    assert JobState.model_validate_json(redis_client.get(names.state("job"))).status is JobStateStatus.COMPLETED
    assert [event["type"] for event in events(redis_client, names, "job")] == ["job:completed"]
    assert not redis_client.exists(names.running("job"))  # its own lock is still let go


def test_duplicate_pushes_the_stored_result_for_waiters_and_settles_the_entry(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    first = delivered(redis_client, names, "first")
    result = completed("dup")
    outcomes.finish(first, "dup", completed_event(result), result=result)
    again = delivered(redis_client, names, "again")
    outcomes.duplicate(again, "dup", outcomes.stored_result("dup"))
    pushed = [JobResult.model_validate_json(item) for item in redis_client.lrange(names.done("dup"), 0, -1)]
    assert pushed == [result, result]
    assert len(final_events(redis_client, names, "dup")) == 1
    assert entry_is_settled(redis_client, again)


def test_duplicate_without_a_readable_result_only_settles_the_entry(redis_client, names):
    outcomes = make_outcomes(redis_client, names)
    lease = delivered(redis_client, names, "again")
    outcomes.duplicate(lease, "gone", None)
    assert not redis_client.exists(names.done("gone"))
    assert entry_is_settled(redis_client, lease)


@pytest.mark.parametrize("stored", [None, "not a result", '{"job_id": "x"}'])
def test_stored_result_is_none_when_missing_or_unreadable(redis_client, names, stored):
    if stored is not None:
        redis_client.set(names.result("x"), stored)
    assert make_outcomes(redis_client, names).stored_result("x") is None
