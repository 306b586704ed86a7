"""Redis Sentinel: real sentinels, a primary and a replica; the master fails over while the worker runs jobs."""

from __future__ import annotations

from typing import Any

import redis

from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus
from npc_video_client.names import StreamNames
from tests.support.jobs import envelope
from tests.support.redis_processes import free_port
from tests.support.redis_sentinel import MASTER_NAME, sentinel_deployment
from tests.support.serving import fast_settings, serving
from tests.support.streams import final_events, pending_count
from tests.support.waiting import wait_until
from worker.queue.connection import open_redis


def test_failover_mid_run_loses_no_job_and_the_worker_follows_the_new_master(tmp_path, catalog_path):
    with sentinel_deployment(tmp_path / "sentinel") as deployment:
        sentinels = f"127.0.0.1:{free_port()},{deployment.sentinels}"  # the first one is down: the next answers
        settings = fast_settings(tmp_path, catalog_path, redis_sentinels=sentinels, redis_sentinel_master=MASTER_NAME)
        client: Any = open_redis(settings)
        producer = NpcVideoClient(client=client)
        names = StreamNames("npc")
        before = [f"before-{index}" for index in range(5)]
        after = [f"after-{index}" for index in range(3)]
        with serving(settings) as worker:
            for index, job_id in enumerate(before):
                producer.submit(envelope(job_id, steps=10, seed=index))
            wait_until(lambda: producer.result(before[0]) is not None, timeout_s=60, what="the first job done")
            assert client.wait(1, 5_000) == 1  # what the worker wrote so far reached the replica
            deployment.fail_over()
            for index, job_id in enumerate(after):  # the producer's client finds the new master too
                producer.submit(envelope(job_id, steps=4, seed=10 + index))
            results = {job_id: producer.wait(job_id, timeout_s=120) for job_id in before + after}
            master_address = worker.service.client.connection_pool.get_master_address()
            assert worker.stop() == 0
        promoted = redis.Redis(port=deployment.replica_port)
        assert promoted.info("replication")["role"] == "master"
        assert master_address == ("127.0.0.1", deployment.replica_port)
        assert {result.status for result in results.values()} == {JobStatus.COMPLETED}
        stored = {job_id: promoted.get(names.result(job_id)) for job_id in before + after}
        assert all(stored.values()), "every result is on the new master"
        assert {job_id: len(final_events(promoted, names, job_id)) for job_id in before + after} == dict.fromkeys(
            before + after, 1
        )
        assert pending_count(promoted, names) == 0
