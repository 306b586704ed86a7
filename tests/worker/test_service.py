"""The Redis-stream worker against a real redis-server: delivery, events, failures, recovery."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from npc_video_client.contract import ErrorCode, JobStatus
from npc_video_client.names import GROUP
from pipelines import families
from pipelines.families import WAN_I2V
from tests.support.failing_pipelines import FailingCallWanPipeline, OutOfMemoryWanPipeline
from tests.support.jobs import envelope
from tests.support.streams import create_groups, dead_letters, event_types, events, pending_count
from tests.support.waiting import wait_until


def test_job_flows_through_the_streams_with_all_events(start_worker, producer, redis_client, names):
    worker = start_worker()
    job_id = producer.submit(envelope("happy", steps=3), lane="normal")
    result = producer.wait(job_id, timeout_s=60)
    assert result.status == JobStatus.COMPLETED, result.error_message
    types = event_types(redis_client, names, job_id)
    assert types[0] == "job:processing" and types[-1] == "job:completed"
    progress = [e for e in events(redis_client, names, job_id) if e["type"] == "job:progress"]
    assert [e["step"] for e in progress] == [1, 2, 3] and progress[-1]["progress"] == 1.0
    processing = events(redis_client, names, job_id)[0]
    assert processing["attempt"] == 1 and processing["model"] == "tiny-wan" and processing["preset"] == "realtime"
    assert processing["worker"] == "worker-a" and processing["status"] == "processing"
    completed = events(redis_client, names, job_id)[-1]
    assert completed["url"] == result.url and completed["status"] == "completed"
    assert 0 < redis_client.ttl(names.result(job_id)) <= 7 * 24 * 3600
    assert result.timings.queue_ms is not None
    wait_until(lambda: pending_count(redis_client, names) == 0, what="ack")
    assert worker.stop() == 0


def test_lanes_drain_high_before_normal_before_low(start_worker, producer, redis_client, names):
    for lane in ("low", "normal", "high"):
        producer.submit(envelope(f"job-{lane}", seed=len(lane)), lane=lane)
    start_worker()
    for lane in ("low", "normal", "high"):
        producer.wait(f"job-{lane}", timeout_s=60)
    completed = [e["job_id"] for e in events(redis_client, names) if e["type"] == "job:completed"]
    assert completed == ["job-high", "job-normal", "job-low"]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"job": "not json"}, "not valid JSON"),
        (
            {"job": json.dumps({"job_id": "schema", "operation_type": "npc_response", "params": {"npc_id": 3}})},
            "params.npc_name",
        ),
        ({"job": json.dumps({**envelope("op"), "operation_type": "npc_dance"})}, "operation_type"),
        ({"other": "x"}, "no field 'job'"),
    ],
)
def test_poison_entries_go_to_the_dead_stream_and_the_worker_continues(
    start_worker, producer, redis_client, names, fields, needle
):
    redis_client.xadd(names.lane("normal"), fields)
    start_worker()
    job_id = producer.submit(envelope("after-poison"))
    assert producer.wait(job_id, timeout_s=60).status == JobStatus.COMPLETED
    dead = wait_until(lambda: dead_letters(redis_client, names), what="dead letter")
    assert len(dead) == 1 and needle in dead[0]["error"]["error_message"]
    assert dead[0]["error"]["error_code"] == "invalid_params"
    failed = [e for e in events(redis_client, names) if e["type"] == "job:failed"]
    assert len(failed) == 1 and failed[0]["retryable"] is False
    wait_until(lambda: pending_count(redis_client, names) == 0, what="all acked")


def test_invalid_params_store_a_failed_result(start_worker, producer, redis_client, names):
    start_worker()
    redis_client.xadd(names.lane("high"), {"job": json.dumps(envelope("bad-intensity", intensity=7))})
    result = producer.wait("bad-intensity", timeout_s=60)
    assert result.status == JobStatus.FAILED and result.error_code == ErrorCode.INVALID_PARAMS
    assert "params.intensity" in result.error_message


def test_a_duplicate_entry_of_an_ended_job_is_acknowledged_without_a_second_final_event(
    start_worker, producer, redis_client, names
):
    worker = start_worker()
    producer.submit(envelope("dup"))
    first = producer.wait("dup", timeout_s=60)
    redis_client.xadd(names.lane("normal"), {"job": json.dumps(envelope("dup"))})  # the client refuses ended ids
    wait_until(lambda: redis_client.llen(names.done("dup")) == 2, what="stored result pushed again for waiters")
    wait_until(lambda: pending_count(redis_client, names) == 0, what="ack")
    assert event_types(redis_client, names, "dup").count("job:completed") == 1
    assert event_types(redis_client, names, "dup").count("job:processing") == 1
    assert producer.result("dup") == first
    assert worker.service.metrics.duplicates._value.get() == 1


def test_expired_deadline_is_dropped_with_job_expired(start_worker, producer, redis_client, names):
    start_worker()
    producer.submit({**envelope("late"), "deadline": 1_000})
    result = producer.wait("late", timeout_s=60)
    assert result.status == JobStatus.EXPIRED and result.error_code == ErrorCode.DEADLINE_EXCEEDED
    expired = [e for e in events(redis_client, names, "late") if e["type"] == "job:expired"]
    assert expired and expired[0]["deadline"] == 1_000
    assert "job:processing" not in event_types(redis_client, names, "late")
    assert dead_letters(redis_client, names) == []


def test_cancel_mid_job_stops_at_the_next_step(start_worker, producer, redis_client, names):
    start_worker()
    producer.submit(envelope("long", steps=200, width=32, height=32))
    wait_until(lambda: "job:progress" in event_types(redis_client, names, "long"), what="first step")
    producer.cancel("long")
    result = producer.wait("long", timeout_s=60)
    assert result.status == JobStatus.CANCELLED and result.error_code == ErrorCode.CANCELLED
    steps = [e["step"] for e in events(redis_client, names, "long") if e["type"] == "job:progress"]
    assert max(steps) < 200
    assert event_types(redis_client, names, "long")[-1] == "job:cancelled"
    assert not redis_client.exists(names.cancel("long"))


def test_cancel_before_pickup(start_worker, producer, redis_client, names):
    producer.submit(envelope("early"))
    producer.cancel("early")
    start_worker()
    assert producer.wait("early", timeout_s=60).status == JobStatus.CANCELLED
    assert "job:processing" not in event_types(redis_client, names, "early")


def _oom_family(monkeypatch, failures: int) -> None:
    monkeypatch.setitem(
        families.FAMILIES,
        "wan-i2v",
        replace(WAN_I2V, pipeline_class="tests.support.failing_pipelines:OutOfMemoryWanPipeline"),
    )
    monkeypatch.setattr(OutOfMemoryWanPipeline, "calls", 0)
    monkeypatch.setattr(OutOfMemoryWanPipeline, "failures", failures)


def test_out_of_memory_is_retried_once_then_completes(start_worker, producer, redis_client, names, monkeypatch):
    _oom_family(monkeypatch, failures=1)
    start_worker()
    producer.submit(envelope("oom-once"))
    result = producer.wait("oom-once", timeout_s=60)
    assert result.status == JobStatus.COMPLETED
    failed = [e for e in events(redis_client, names, "oom-once") if e["type"] == "job:failed"]
    assert [(e["error_code"], e["retryable"], e["attempt"]) for e in failed] == [("out_of_memory", True, 1)]
    processing = [e["attempt"] for e in events(redis_client, names, "oom-once") if e["type"] == "job:processing"]
    assert processing == [1, 2]


def test_out_of_memory_twice_is_final(start_worker, producer, redis_client, names, monkeypatch):
    _oom_family(monkeypatch, failures=5)
    worker = start_worker()
    producer.submit(envelope("oom-always"))
    result = producer.wait("oom-always", timeout_s=60)
    assert result.error_code == ErrorCode.OUT_OF_MEMORY and result.status == JobStatus.FAILED
    failed = [
        (e["retryable"], e["attempt"]) for e in events(redis_client, names, "oom-always") if e["type"] == "job:failed"
    ]
    assert failed == [(True, 1), (False, 2)]
    assert len(dead_letters(redis_client, names)) == 1
    assert OutOfMemoryWanPipeline.calls == 2
    assert worker.thread.is_alive()  # the worker stays up


def _failing_call_family(monkeypatch, error: Exception) -> None:
    monkeypatch.setitem(
        families.FAMILIES,
        "wan-i2v",
        replace(WAN_I2V, pipeline_class="tests.support.failing_pipelines:FailingCallWanPipeline"),
    )
    monkeypatch.setattr(FailingCallWanPipeline, "calls", 0)
    monkeypatch.setattr(FailingCallWanPipeline, "error", error)


def test_a_failure_certain_to_repeat_is_final_at_once(start_worker, producer, redis_client, names, monkeypatch):
    _failing_call_family(monkeypatch, RuntimeError("The size of tensor a (7) must match the size of tensor b (5)"))
    start_worker()
    producer.submit(envelope("same-again"))
    result = producer.wait("same-again", timeout_s=60)
    assert (result.status, result.error_code) == (JobStatus.FAILED, ErrorCode.INTERNAL_ERROR)
    assert "not retried" in result.error_message and "RuntimeError" in result.error_message
    failed = [e for e in events(redis_client, names, "same-again") if e["type"] == "job:failed"]
    assert [(e["retryable"], e["attempt"]) for e in failed] == [(False, 1)]
    assert FailingCallWanPipeline.calls == 1
    assert len(dead_letters(redis_client, names)) == 1


def test_a_fault_of_the_device_is_retried(start_worker, producer, redis_client, names, monkeypatch):
    _failing_call_family(monkeypatch, RuntimeError("CUDA error: an illegal memory access was encountered"))
    start_worker()
    producer.submit(envelope("device-fault"))
    assert producer.wait("device-fault", timeout_s=60).status == JobStatus.COMPLETED
    failed = [e for e in events(redis_client, names, "device-fault") if e["type"] == "job:failed"]
    assert [(e["error_code"], e["retryable"], e["attempt"]) for e in failed] == [("internal_error", True, 1)]


def test_entry_of_a_dead_consumer_is_taken_over(start_worker, producer, redis_client, names):
    create_groups(redis_client, names)
    producer.submit(envelope("orphan"))
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("normal"): ">"}, count=1)  # read, then "died"
    start_worker(claim_idle_ms=1_000)
    result = producer.wait("orphan", timeout_s=60)
    assert result.status == JobStatus.COMPLETED
    processing = [e for e in events(redis_client, names, "orphan") if e["type"] == "job:processing"]
    assert processing[0]["attempt"] == 1  # read by a consumer that died before running it: this is the first run
    wait_until(lambda: pending_count(redis_client, names) == 0, what="ack")


def test_a_job_whose_runs_all_died_goes_dead_after_max_attempts(start_worker, producer, redis_client, names):
    create_groups(redis_client, names)
    producer.submit(envelope("cursed"))
    redis_client.set(names.attempts("cursed"), 3)  # three runs started before, each one's worker died
    start_worker(max_attempts=3)
    result = producer.wait("cursed", timeout_s=60)
    assert result.status == JobStatus.FAILED
    assert "gave up after 3 runs started" in result.error_message
    assert len(dead_letters(redis_client, names)) == 1
    assert not redis_client.exists(names.attempts("cursed"))  # the final write clears the counter


def test_deliveries_without_runs_do_not_count_as_attempts(start_worker, producer, redis_client, names):
    create_groups(redis_client, names)
    producer.submit(envelope("innocent"))
    stream = names.lane("normal")
    entry_id = redis_client.xreadgroup(GROUP, "ghost", {stream: ">"}, count=1)[0][1][0][0]
    for _ in range(5):  # read-ahead and take-overs raise Redis's delivery count, not the attempt number
        redis_client.xclaim(stream, GROUP, "ghost", 0, [entry_id])
    start_worker(claim_idle_ms=1_000, max_attempts=3)
    result = producer.wait("innocent", timeout_s=60)
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert [e["attempt"] for e in events(redis_client, names, "innocent") if e["type"] == "job:processing"] == [1]
    assert dead_letters(redis_client, names) == []


def test_own_pending_entries_are_recovered_first_after_restart(start_worker, producer, redis_client, names):
    create_groups(redis_client, names)
    producer.submit(envelope("mine"))
    redis_client.xreadgroup(GROUP, "worker-a", {names.lane("normal"): ">"}, count=1)  # previous life
    start_worker(claim_idle_ms=600_000)  # no take-over: only own-pending recovery can run it
    assert producer.wait("mine", timeout_s=60).status == JobStatus.COMPLETED


def test_redis_restart_mid_run_the_worker_reconnects_and_finishes(
    start_worker, producer, redis_client, redis_server, names
):
    start_worker()
    for index in range(4):
        producer.submit(envelope(f"r{index}", seed=index))
    wait_until(lambda: producer.result("r0"), timeout_s=60, what="first result")
    redis_server.restart()
    for index in range(4, 6):
        producer.submit(envelope(f"r{index}", seed=index))
    for index in range(6):
        assert producer.wait(f"r{index}", timeout_s=90).status == JobStatus.COMPLETED
    wait_until(lambda: pending_count(redis_client, names) == 0, what="all acked")


def test_events_are_mirrored_on_pubsub(start_worker, producer, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe("npc-events")
    wait_until(lambda: pubsub.get_message(timeout=0.1), what="subscribed")
    start_worker(events_channel="npc-events")
    producer.submit(envelope("pub"))
    producer.wait("pub", timeout_s=60)
    seen = []
    wait_until(
        lambda: (
            (message := pubsub.get_message(timeout=0.1))
            and seen.append(message) is None
            and any(b"job:completed" in m["data"] for m in seen)
        ),
        what="published completion",
    )


def test_graceful_stop_finishes_the_current_job(start_worker, producer, redis_client, names):
    worker = start_worker()
    producer.submit(envelope("drain", steps=30))
    wait_until(lambda: "job:progress" in event_types(redis_client, names, "drain"), what="started")
    assert worker.stop() == 0
    assert producer.result("drain").status == JobStatus.COMPLETED
    assert pending_count(redis_client, names) == 0


def test_redis_outage_during_generation_does_not_fail_the_job(start_worker, producer, redis_server, names):
    start_worker()
    producer.submit(envelope("through-outage", steps=150, width=64, height=64, duration=2.0))
    client = producer.redis
    wait_until(lambda: "job:progress" in event_types(client, names, "through-outage"), what="generation started")
    redis_server.stop()
    time.sleep(1.0)
    redis_server.start()
    result = producer.wait("through-outage", timeout_s=120)
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert event_types(client, names, "through-outage")[-1] == "job:completed"


def test_a_corrupt_stored_result_does_not_stop_the_worker(start_worker, producer, redis_client, names):
    redis_client.set(names.result("corrupt"), "not a result")
    worker = start_worker()
    producer.submit(envelope("corrupt"))
    wait_until(
        lambda: (stored := producer.redis.get(names.result("corrupt"))) and stored != b"not a result",
        timeout_s=60,
        what="result replaced",
    )
    assert producer.result("corrupt").status == JobStatus.COMPLETED
    assert worker.thread.is_alive()


def test_affinity_runs_jobs_for_the_model_on_the_device_first(
    start_worker, producer, redis_client, names, catalog_path, model_dir
):
    from models.residency import weight_bytes

    other = model_dir("wan-i2v", seed=1)
    catalog_path.write_text(
        catalog_path.read_text()
        + f'\n[models.other]\nfamily = "wan-i2v"\npath = "{other}"\ndtype = "float32"\n'
        + '[styles.anime]\nmodel = "other"\n'
    )
    from diffusers import WanImageToVideoPipeline

    budget = int(weight_bytes(WanImageToVideoPipeline.from_pretrained(str(other))) * 1.5)
    for job_id, style in (("a-tiny", None), ("b-other", "anime"), ("c-tiny", None), ("d-other", "anime")):
        producer.submit(envelope(job_id, art_style=style, width=32, height=32, seed=len(job_id)))
    worker = start_worker(device_memory_budget=budget, affinity_lookahead=4, affinity_max_skips=3)
    for job_id in ("a-tiny", "b-other", "c-tiny", "d-other"):
        assert producer.wait(job_id, timeout_s=120).status == JobStatus.COMPLETED
    order = [e["job_id"] for e in events(redis_client, names) if e["type"] == "job:processing"]
    assert order == ["a-tiny", "c-tiny", "b-other", "d-other"]
    assert worker.service.runtime.pool.stats("tiny-wan").offloads == 1  # one swap instead of three
