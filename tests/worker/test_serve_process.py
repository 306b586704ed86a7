"""`npc-worker serve` as real processes: kill -9 recovery, SIGTERM drain, two workers, HTTP endpoints."""

from __future__ import annotations

import signal
import time
from collections import Counter

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.streams import events, pending_count
from tests.support.waiting import wait_until


def test_kill_9_mid_job_another_worker_completes_it_once(spawn, producer, redis_client, names):
    first = spawn("victim")
    first.wait_ready()
    producer.submit(envelope("survivor", steps=200, width=64, height=64, duration=2.0))
    wait_until(
        lambda: any(e["type"] == "job:progress" for e in events(redis_client, names, "survivor")),
        what="job started on the victim",
    )
    first.signal(signal.SIGKILL)
    first.wait_exit()
    second = spawn("rescuer")
    result = producer.wait("survivor", timeout_s=180)
    assert result.status == JobStatus.COMPLETED, second.log()
    completed = [e for e in events(redis_client, names, "survivor") if e["type"] == "job:completed"]
    assert len(completed) == 1 and completed[0]["worker"] == "rescuer"
    attempts = [e["attempt"] for e in events(redis_client, names, "survivor") if e["type"] == "job:processing"]
    assert attempts == [1, 2]
    wait_until(lambda: pending_count(redis_client, names) == 0, what="nothing pending")


def test_sigterm_while_the_worker_is_still_importing_is_a_graceful_stop(spawn, redis_client, names):
    worker = spawn("early")
    time.sleep(0.3)  # torch, diffusers and transformers take seconds to import
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(timeout_s=120) == 0, worker.log()
    assert pending_count(redis_client, names) == 0
    assert "stopped after 0 jobs" in worker.log()


def test_sigterm_finishes_the_current_job_then_exits_zero(spawn, producer, redis_client, names):
    worker = spawn("drainer")
    worker.wait_ready()
    producer.submit(envelope("current", steps=60))
    producer.submit(envelope("queued", seed=9))
    wait_until(
        lambda: any(e["type"] == "job:progress" for e in events(redis_client, names, "current")), what="job started"
    )
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0, worker.log()
    assert producer.result("current").status == JobStatus.COMPLETED
    assert producer.result("queued") is None  # not started: it waits for the next worker
    assert pending_count(redis_client, names) == 0


def test_second_signal_exits_at_once_leaving_the_entry_pending(spawn, producer, redis_client, names):
    worker = spawn("impatient")
    worker.wait_ready()
    producer.submit(envelope("abandoned", steps=200, width=64, height=64, duration=2.0))
    wait_until(
        lambda: any(e["type"] == "job:progress" for e in events(redis_client, names, "abandoned")), what="job started"
    )
    worker.signal(signal.SIGTERM)
    time.sleep(0.5)  # two signals sent back to back coalesce into one handler call
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(timeout_s=30) != 0
    assert producer.result("abandoned") is None
    assert pending_count(redis_client, names) == 1


def test_fifty_jobs_through_two_workers_complete_exactly_once(spawn, producer, redis_client, names):
    workers = [spawn("w1"), spawn("w2")]
    for index in range(50):
        producer.submit(envelope(f"bulk-{index}", seed=index, width=32, height=32, steps=1))
    for index in range(50):
        assert producer.wait(f"bulk-{index}", timeout_s=300).status == JobStatus.COMPLETED
    completed = Counter(e["job_id"] for e in events(redis_client, names) if e["type"] == "job:completed")
    assert len(completed) == 50 and set(completed.values()) == {1}
    by_worker = Counter(e["worker"] for e in events(redis_client, names) if e["type"] == "job:completed")
    assert set(by_worker) == {"w1", "w2"}, by_worker
    assert pending_count(redis_client, names) == 0
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait_exit() == 0


def test_health_readiness_and_metrics_endpoints(spawn, producer, redis_server):
    worker = spawn("observed")
    worker.wait_ready()
    assert worker.get("/healthz")[0] == 200
    before = worker.get("/metrics")[1].decode()
    assert 'npc_jobs_total{error_code="",outcome="completed"} 0.0' in before  # every series exists from the start
    assert 'npc_jobs_total{error_code="storage_error",outcome="failed"} 0.0' in before
    assert 'npc_worker_state{state="ready"} 1.0' in before
    producer.submit(envelope("measured"))
    producer.wait("measured", timeout_s=60)
    status, body = worker.get("/metrics")
    text = body.decode()
    assert status == 200
    assert 'npc_jobs_total{error_code="",outcome="completed"} 1.0' in text
    assert 'npc_job_phase_seconds_count{model="tiny-wan",phase="generate",preset="realtime"} 1.0' in text
    assert 'npc_queue_depth{lane="normal"} 0.0' in text
    assert "npc_redis_up 1.0" in text and "npc_dead_letters 0.0" in text
    assert "npc_jobs_in_flight 0.0" in text and 'npc_device_memory_bytes{kind="peak"}' in text
    assert 'npc_model_disk_loads_total{model="tiny-wan"} 1.0' in text
    assert "npc_build_info{" in text and "process_cpu_seconds_total" in text and "python_info" in text
    redis_server.stop()
    assert worker.get("/readyz")[0] == 503
    assert worker.get("/healthz")[0] == 200  # alive: it waits for Redis to come back
    during_outage = worker.get("/metrics")
    assert during_outage[0] == 200
    assert "npc_redis_up 0.0" in during_outage[1].decode()
    assert 'npc_queue_depth{lane="normal"} NaN' in during_outage[1].decode()
    assert worker.get("/nope")[0] == 404
