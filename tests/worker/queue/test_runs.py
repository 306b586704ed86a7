"""worker.queue.runs against a real redis-server: one run per job at a time, attempts count runs that began,
ended jobs stay ended."""

from __future__ import annotations

import json
import time

import pytest

from npc_video_client.contract import JobProcessingEvent, JobResult, JobState, JobStateStatus, JobStatus, QualityPreset
from npc_video_client.names import Lane
from worker.queue.events import EventWriter
from worker.queue.job_state import JobStates
from worker.queue.leases import Lease
from worker.queue.runs import Claim, Run, RunGate, Verdict

ATTEMPTS_TTL_S = 3600
MAX_ATTEMPTS = 2


def make_gate(redis_client, names, consumer: str = "c1", lock_ms: int = 30_000) -> RunGate:
    events = EventWriter(redis_client, names, consumer, maxlen=1000, channel=None)
    states = JobStates(names, consumer, ATTEMPTS_TTL_S)
    return RunGate(
        redis_client,
        names,
        consumer,
        lock_ms,
        ATTEMPTS_TTL_S,
        events=events,
        states=states,
        max_attempts=MAX_ATTEMPTS,
    )


def test_a_claim_takes_the_lock_and_a_run_that_begins_counts_one_attempt(redis_client, names):
    gate = make_gate(redis_client, names)
    first = gate.new_token("1-0")
    assert gate.claim("job", first) == Claim(Verdict.RUN)
    assert redis_client.get(names.running("job")) == first.encode()
    assert 0 < redis_client.pttl(names.running("job")) <= 30_000
    assert not redis_client.exists(names.attempts("job"))  # claimed and prepared is not yet a run
    assert gate.begin("job") == 1
    assert 0 < redis_client.ttl(names.attempts("job")) <= ATTEMPTS_TTL_S
    # the same consumer name and entry again: its previous process died (a restart), so its lock is taken over
    # at once instead of waiting for it to expire; the run that begins then is the next attempt
    second = gate.new_token("1-0")
    assert gate.claim("job", second) == Claim(Verdict.RUN)
    assert redis_client.get(names.running("job")) == second.encode()
    assert gate.begin("job") == 2
    # another entry of the same job under this consumer is a duplicate: it waits
    assert gate.claim("job", gate.new_token("2-0")).verdict is Verdict.BUSY


def test_tokens_name_the_consumer_and_entry_and_never_repeat(redis_client, names):
    gate = make_gate(redis_client, names, consumer="host:cpu")
    tokens = {gate.new_token("5-1") for _ in range(50)}
    assert len(tokens) == 50 and all(token.startswith("host:cpu/5-1/") for token in tokens)


def test_a_job_held_by_another_run_is_busy_and_not_counted(redis_client, names):
    gate = make_gate(redis_client, names)
    other = make_gate(redis_client, names, consumer="c2")
    holder = other.new_token("1-0")
    assert other.claim("job", holder).verdict is Verdict.RUN
    assert gate.claim("job", gate.new_token("2-0")) == Claim(Verdict.BUSY, detail=holder)
    assert not redis_client.exists(names.attempts("job"))
    assert redis_client.get(names.running("job")) == holder.encode()


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED])
def test_a_job_with_a_final_result_is_never_run_again(redis_client, names, status):
    gate = make_gate(redis_client, names)
    redis_client.set(names.result("job"), JobResult(job_id="job", status=status).model_dump_json())
    assert gate.claim("job", gate.new_token("1-0")) == Claim(Verdict.FINAL, detail=status.value)
    assert not redis_client.exists(names.running("job"))
    assert not redis_client.exists(names.attempts("job"))


@pytest.mark.parametrize(
    "stored",
    ["not json", "[1, 2]", '"completed"', json.dumps({"status": "processing"}), json.dumps({"status": 7}), "{"],
)
def test_a_corrupt_or_non_final_stored_result_does_not_stop_a_run(redis_client, names, stored):
    gate = make_gate(redis_client, names)
    redis_client.set(names.result("job"), stored)
    assert gate.claim("job", gate.new_token("1-0")) == Claim(Verdict.RUN)


def test_renew_extends_only_the_holders_lock(redis_client, names):
    gate = make_gate(redis_client, names, lock_ms=2_000)
    mine, theirs = gate.new_token("1-0"), "c2/9-0/someone"
    gate.claim("mine", mine)
    redis_client.set(names.running("theirs"), theirs, px=2_000)
    time.sleep(0.5)
    gate.renew([("mine", mine), ("theirs", "c1/9-0/impostor")])
    assert redis_client.pttl(names.running("mine")) > 1_700  # renewed to 2 s
    assert redis_client.pttl(names.running("theirs")) <= 1_500  # left to run down
    assert redis_client.get(names.running("theirs")) == theirs.encode()


def test_renew_with_nothing_held_is_a_no_op(redis_client, names):
    make_gate(redis_client, names).renew([])
    assert redis_client.dbsize() == 0


def test_release_lets_go_only_the_holders_claim(redis_client, names):
    gate = make_gate(redis_client, names)
    token = gate.new_token("1-0")
    gate.claim("job", token)
    gate.release("job", "c1/1-0/not-the-holder")
    assert redis_client.get(names.running("job")) == token.encode()
    gate.release("job", token)  # prepared, never began (a stop while it waited for the device)
    assert not redis_client.exists(names.running("job"))
    assert not redis_client.exists(names.attempts("job"))


def test_an_unrenewed_lock_expires_and_the_job_can_run_again(redis_client, names):
    gate = make_gate(redis_client, names, lock_ms=500)
    other = make_gate(redis_client, names, consumer="c2", lock_ms=500)
    gate.claim("job", gate.new_token("1-0"))  # its worker died: nobody renews
    assert other.claim("job", other.new_token("2-0")).verdict is Verdict.BUSY
    time.sleep(0.6)
    assert other.claim("job", other.new_token("2-0")) == Claim(Verdict.RUN)


def test_a_run_that_begins_writes_job_processing_with_its_attempt_until_one_too_many(redis_client, names):
    gate = make_gate(redis_client, names)
    lease = Lease(Lane.NORMAL, names.lane("normal"), "1-0", {b"job": b"{}"})
    metadata = {"attempt": "the producer's own key", "nested": {"attempt": 9}, "big": 2**62}
    for expected in (1, 2, 3):
        run = Run(lease, "job", gate.new_token("1-0"), metadata=metadata)
        assert gate.begin_run(run, "tiny-wan", QualityPreset.FAST, 8) == expected == run.attempt
        if expected <= MAX_ATTEMPTS:
            state = JobState.model_validate_json(redis_client.get(names.state("job")))
            assert (state.status, state.attempt, state.steps, state.step, state.worker) == (
                JobStateStatus.RUNNING,
                expected,
                8,
                None,
                "c1",
            )
            assert 0 < redis_client.ttl(names.state("job")) <= ATTEMPTS_TTL_S
    events = [
        JobProcessingEvent.model_validate_json(fields[b"event"]) for _id, fields in redis_client.xrange(names.events)
    ]
    assert [event.attempt for event in events] == [1, 2]  # the third run is one too many: it ends, unannounced
    assert all(event.metadata == metadata and event.model == "tiny-wan" for event in events)
    assert all(event.worker == "c1" and event.preset is QualityPreset.FAST for event in events)
