"""Jobs longer than claim_idle_ms, as operators run them: real worker processes, a second worker waiting to take
over anything left unattended, retries, restarts, SIGTERM drains and Redis restarts. Whatever happens, every job
ends with exactly one final event and one result, and no job runs on two workers at once.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from npc_video_client.contract import JobStatus
from npc_video_client.names import GROUP, StreamNames
from tests.support.jobs import envelope
from tests.support.redis_server import RedisServer
from tests.support.streams import events, final_events, pending_count, runs
from tests.support.waiting import wait_until
from tests.support.worker_process import WorkerProcess

CLAIM_IDLE_MS = 1_000  # the smallest the worker accepts: every long job below outlasts it several times
LONG = {"width": 64, "height": 64, "duration": 2.0, "steps": 200}  # seconds even on a quiet machine
SHORT = {"width": 32, "height": 32, "duration": 0.5, "steps": 1}

Spawn = Callable[..., WorkerProcess]


def started(client: redis.Redis, names: StreamNames, job_id: str) -> bool:
    return any(event["type"] == "job:progress" for event in events(client, names, job_id))


def held_by(client: redis.Redis, names: StreamNames, consumer: str) -> int:
    return sum(
        len(client.xpending_range(stream, GROUP, min="-", max="+", count=100, consumername=consumer))
        for stream in names.lanes
        if client.exists(stream)
    )


def submit_together(client: redis.Redis, names: StreamNames, jobs: list[dict[str, Any]]) -> None:
    """XADD several jobs in one transaction, so the first worker to read takes them all (read-ahead)."""
    pipe = client.pipeline(transaction=True)
    for job in jobs:
        pipe.xadd(names.lane("normal"), {"job": json.dumps(job)})
    pipe.execute()


def assert_ended_once(client: redis.Redis, names: StreamNames, job_ids: list[str], producer: Any) -> None:
    for job_id in job_ids:
        result = producer.wait(job_id, timeout_s=180)
        assert result.status == JobStatus.COMPLETED, (job_id, result.error_message)
        finals = final_events(client, names, job_id)
        assert [event["type"] for event in finals] == ["job:completed"], (job_id, finals)
        assert finals[0]["url"] == result.url
    wait_until(lambda: pending_count(client, names) == 0, what="nothing pending")


def assert_outlasted_claim_idle(producer: Any, job_id: str) -> None:
    generate_ms = producer.result(job_id).timings.generate_ms
    assert generate_ms > 1.5 * CLAIM_IDLE_MS, f"job {job_id} took {generate_ms} ms: not long enough to test anything"


def test_a_retry_waiting_behind_a_long_job_stays_with_its_worker(
    spawn: Spawn, producer, redis_client, names, tmp_path: Path
):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "blocked").write_text("a file where the NPC's output folder belongs: storage_error, retryable")
    producer.submit(envelope("retried", npc_id="blocked", **SHORT))
    producer.submit(envelope("long", **LONG))
    spawn("a", claim_idle_ms=CLAIM_IDLE_MS, retry_backoff_ms=500)  # reads both at once (read-ahead)
    wait_until(
        lambda: any(e["type"] == "job:failed" for e in events(redis_client, names, "retried")), what="first attempt"
    )
    (outputs / "blocked").unlink()
    wait_until(lambda: started(redis_client, names, "long"), timeout_s=60, what="long job started")
    b = spawn("b", claim_idle_ms=CLAIM_IDLE_MS)  # idle: it takes over whatever a stops keeping alive
    b.wait_ready()
    assert_ended_once(redis_client, names, ["retried", "long"], producer)
    assert_outlasted_claim_idle(producer, "long")
    assert runs(redis_client, names, "retried") == [("a", 1), ("a", 2)]
    assert runs(redis_client, names, "long") == [("a", 1)]
    assert "took over" not in b.log()


def test_recovery_after_kill_9_while_another_worker_is_idle(spawn: Spawn, producer, redis_client, names):
    for job_id, size in (("long", LONG), ("second", SHORT), ("third", SHORT)):
        producer.submit(envelope(job_id, seed=len(job_id), **size))
    a = spawn("a", claim_idle_ms=CLAIM_IDLE_MS)
    wait_until(lambda: started(redis_client, names, "long"), timeout_s=60, what="long job started")
    assert held_by(redis_client, names, "a") == 3  # the running job and two read ahead
    a.signal(signal.SIGKILL)
    a.wait_exit()
    # Both start at once: b, idle, takes over a's entries once they are idle past claim_idle_ms, while a, back
    # under its own consumer name, recovers those still its own and keeps them alive as it loads its model.
    spawn("b", claim_idle_ms=CLAIM_IDLE_MS)
    spawn("a", claim_idle_ms=CLAIM_IDLE_MS)
    assert_ended_once(redis_client, names, ["long", "second", "third"], producer)
    assert len(runs(redis_client, names, "long")) == 2  # killed mid-job once: one more run, no more
    for job_id in ("second", "third"):  # never started before the kill: exactly one run, wherever
        assert len(runs(redis_client, names, job_id)) == 1, runs(redis_client, names, job_id)


def test_sigterm_drain_keeps_the_long_job_and_hands_back_the_rest(spawn: Spawn, producer, redis_client, names):
    # Waiting before either worker starts: the first one ready reads both at once (read-ahead of a backlog).
    submit_together(redis_client, names, [envelope("long", **LONG), envelope("waiting", **SHORT)])
    workers = {name: spawn(name, claim_idle_ms=CLAIM_IDLE_MS) for name in ("a", "b")}
    wait_until(lambda: started(redis_client, names, "long"), timeout_s=60, what="long job started")
    ((draining, _),) = runs(redis_client, names, "long")
    other = "b" if draining == "a" else "a"
    assert held_by(redis_client, names, draining) == 2  # one read took both: the long job and one waiting
    workers[draining].signal(signal.SIGTERM)
    assert workers[draining].wait_exit(timeout_s=180) == 0, workers[draining].log()
    assert_ended_once(redis_client, names, ["long", "waiting"], producer)
    assert_outlasted_claim_idle(producer, "long")
    assert runs(redis_client, names, "long") == [(draining, 1)]  # the other never took the draining job over
    assert runs(redis_client, names, "waiting") == [(other, 1)]  # handed back at once, while the long job ran
    assert "handed npc:jobs:normal/" in workers[draining].log()


@pytest.mark.parametrize("persistent", [True, False], ids=["with-persistence", "without-persistence"])
def test_redis_restart_during_a_long_job(spawn: Spawn, tmp_path: Path, catalog_path: Path, persistent: bool):
    from npc_video_client.client import NpcVideoClient

    server = RedisServer(tmp_path / "volatile-redis", persistent=persistent)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        producer = NpcVideoClient(server.url)
        names = StreamNames("npc")
        producer.submit(envelope("long", **LONG))
        producer.submit(envelope("waiting", **SHORT))
        spawn("a", claim_idle_ms=CLAIM_IDLE_MS, redis_url=server.url)
        wait_until(lambda: started(client, names, "long"), timeout_s=60, what="long job started")
        server.restart()
        if not persistent:
            assert not client.exists(names.lane("normal"))  # the data is gone: only the workers remember the jobs
        assert_ended_once(client, names, ["long", "waiting"], producer)
        assert_outlasted_claim_idle(producer, "long")
        assert len(runs(client, names, "waiting")) == 1  # held, never run before the restart: run once after it
        if persistent:
            assert runs(client, names, "long") == [("a", 1)]
    finally:
        server.stop()
