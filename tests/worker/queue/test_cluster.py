"""Redis Cluster: a real three-master cluster, a hash-tagged prefix, jobs through a real worker and the CLI."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus
from npc_video_client.names import StreamNames
from tests.support.jobs import envelope
from tests.support.redis_cluster import RedisClusterServers, redis_cluster
from tests.support.serving import fast_settings, serving
from tests.support.streams import FINAL_EVENTS, events, pending_count
from tests.support.waiting import wait_until
from worker.cli import app
from worker.queue.connection import is_cluster, open_redis
from worker.queue.depth import read_queue

PREFIX = "{npc}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    with redis_cluster(tmp_path / "cluster") as servers:
        yield servers


def test_jobs_complete_through_a_worker_on_a_three_master_cluster(cluster, tmp_path, catalog_path, caplog):
    caplog.set_level(logging.WARNING, logger="worker")
    settings = fast_settings(
        tmp_path,
        catalog_path,
        redis_url=cluster.url,
        redis_cluster=True,
        prefix=PREFIX,
        claim_idle_ms=1_000,  # keepalive and lock renewal every ~0.3 s: their cluster path runs during each job
        events_channel="npc-live",
    )
    client: Any = open_redis(settings)
    assert is_cluster(client)
    names = StreamNames(PREFIX)
    producer = NpcVideoClient(prefix=PREFIX, client=client)
    live = redis.Redis(port=cluster.ports[2]).pubsub()  # PUBLISH reaches every node of a cluster
    live.subscribe("npc-live")
    lanes = {"c-high": "high", "c-normal": "normal", "c-low": "low", "c-bad": "normal"}
    with serving(settings) as worker:
        for job_id, lane in lanes.items():
            job = envelope(job_id, steps=6, seed=len(job_id), intensity=1.5 if job_id == "c-bad" else 0.5)
            client.xadd(names.lane(lane), {"job": json.dumps(job)})  # as any producer: c-bad is invalid
        results = {job_id: producer.wait(job_id, timeout_s=120) for job_id in lanes}
        reading = read_queue(client, names)
        assert worker.stop() == 0
    assert {job_id: result.status for job_id, result in results.items()} == {
        "c-high": JobStatus.COMPLETED,
        "c-normal": JobStatus.COMPLETED,
        "c-low": JobStatus.COMPLETED,
        "c-bad": JobStatus.FAILED,
    }
    finals = Counter(e["job_id"] for e in events(client, names) if e["type"] in FINAL_EVENTS and not e.get("retryable"))
    assert finals == dict.fromkeys(lanes, 1)
    assert pending_count(client, names) == 0
    complaints = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert complaints == []  # keepalive, lock renewal and events went through (their failures are only logged)
    assert reading.depth == {"high": 0.0, "normal": 0.0, "low": 0.0} and reading.dead_letters == 1.0
    slot = client.keyslot("npc")
    assert {client.keyslot(key) for key in [*names.lanes, names.events, names.dead, names.result("c-low")]} == {slot}
    published = []
    while (message := live.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            published.append(message["data"])
    assert len(published) == len(events(client, names))  # every event mirrored, from scripts and from emit()


def test_cli_status_and_dead_retry_work_in_cluster_mode(cluster, tmp_path, catalog_path, monkeypatch):
    monkeypatch.setenv("NPC_WORKER_REDIS_CLUSTER", "1")
    monkeypatch.setenv("NPC_WORKER_PREFIX", PREFIX)
    monkeypatch.setenv("NPC_WORKER_REDIS_URL", cluster.url)
    settings = fast_settings(tmp_path, catalog_path, redis_url=cluster.url, redis_cluster=True, prefix=PREFIX)
    client: Any = open_redis(settings)
    names = StreamNames(PREFIX)
    producer = NpcVideoClient(prefix=PREFIX, client=client)
    cli = CliRunner()
    with serving(settings):
        client.xadd(names.lane("normal"), {"job": json.dumps(envelope("c-dead", intensity=1.5))})
        assert producer.wait("c-dead", timeout_s=60).status == JobStatus.FAILED
        assert cli.invoke(app, ["status", "c-dead"]).exit_code == 1
        dead_id = client.xrange(names.dead)[0][0].decode()
        retried = cli.invoke(app, ["dead", "retry", dead_id])
        assert retried.exit_code == 0, retried.output
        wait_until(lambda: client.xlen(names.dead) == 1 and client.xrange(names.dead)[0][0].decode() != dead_id)
    failed_events = [e for e in events(client, names, "c-dead") if e["type"] == "job:failed"]
    assert len(failed_events) == 2  # the re-queued job ran again (and failed again: its params are still invalid)
