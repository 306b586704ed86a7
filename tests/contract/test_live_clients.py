"""The Python clients against a real worker: events from submit to result, metadata echoed everywhere, waiting on
the completion list, status while running, cancellation, refused jobs, duplicate entries."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from npc_video_client import AsyncNpcVideoClient, CancelOutcome, JobAlreadyEnded, JobStateStatus, NpcVideoClient
from npc_video_client.contract import CONTRACT_VERSION, ErrorCode, JobProgressEvent, JobStatus
from tests.contract.conftest import NAMES
from tests.support.jobs import envelope
from tests.support.video import path_of
from tests.support.waiting import wait_until

METADATA = {"generation_id": 7001, "provider": "npc-video", "tags": ["smile", 2], "nested": {"ok": True}}


def test_the_sync_client_follows_a_job_from_submit_to_result(live):
    client = NpcVideoClient(live.url)
    stream = client.events(job_id="live-sync", block_ms=60_000)  # opened before the submit: nothing is missed
    client.submit({**envelope("live-sync", loras=["glow:0.5"], steps=3), "metadata": METADATA}, lane="high")
    result = client.wait("live-sync", timeout_s=120)
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert result.metadata == METADATA and result.contract_version == CONTRACT_VERSION
    assert path_of(result.url).is_file() and result.loras[0].name == "glow"
    events = list(stream)
    types = [event.type for event in events]
    assert types[0] == "job:processing" and types[-1] == "job:completed"
    assert [event.step for event in events if isinstance(event, JobProgressEvent)] == [1, 2, 3]
    assert all(event.metadata == METADATA for event in events)
    assert events[-1].url == result.url and events[-1].contract_version == CONTRACT_VERSION
    # waiting consumed nothing: every later waiter and status() see the same result
    assert client.wait("live-sync", timeout_s=5) == result == client.result("live-sync")
    raw = redis.Redis.from_url(live.url)
    assert raw.llen(NAMES.done("live-sync")) == 1 and 0 < raw.ttl(NAMES.done("live-sync")) <= 24 * 3600


def test_the_async_client_follows_a_job_too(live):
    async def scenario() -> None:
        client = AsyncNpcVideoClient(live.url)
        try:
            stream = await client.events(job_id="live-async", block_ms=60_000)
            await client.submit({**envelope("live-async", seed=11), "metadata": {"generation_id": 7002}})
            waiters = [client.wait("live-async", timeout_s=120) for _ in range(2)]
            first, second = await asyncio.gather(*waiters)
            assert first == second and first.status == JobStatus.COMPLETED and first.seed == 11
            assert first.metadata == {"generation_id": 7002}
            events = [event async for event in stream]
            assert events[-1].type == "job:completed" and {e.metadata["generation_id"] for e in events} == {7002}
        finally:
            await client.close()

    asyncio.run(scenario())


def test_the_async_client_cancels_warm_jobs_and_warming_again_withdraws_the_cancel(live):
    npc = {"npc_id": "npc-async", "npc_name": "Ona", "npc_base_image": envelope("x")["params"]["npc_base_image"]}
    small = {"width": 32, "height": 32, "duration": 1, "steps": 2}
    reactions = [{"expression": "calm", "emotion": "calm", "animation": "idle", "intensity": 0.5, **small}]
    raw = redis.Redis.from_url(live.url)

    async def scenario() -> None:
        client = AsyncNpcVideoClient(live.url)
        try:
            (warm_id,) = await client.warm_cancel(npc, reactions, ttl_s=600)
            assert warm_id.startswith("warm-") and 0 < raw.ttl(NAMES.cancel(warm_id)) <= 600
            assert await client.warm(npc, reactions) == [warm_id]
            assert raw.exists(NAMES.cancel(warm_id)) == 0
        finally:
            await client.close()

    asyncio.run(scenario())


def test_status_while_running_then_cancel(live):
    client = NpcVideoClient(live.url)
    stream = client.events(job_id="live-long", block_ms=60_000)
    client.submit({**envelope("live-long", steps=200, width=32, height=32), "metadata": {"generation_id": 7003}})
    first = next(event for event in stream if event.type == "job:progress")
    assert first.metadata == {"generation_id": 7003}
    assert client.cancel("live-long", ttl_s=60) is CancelOutcome.CANCELLED
    result = client.wait("live-long", timeout_s=120)
    assert result.status == JobStatus.CANCELLED and result.error_code == ErrorCode.CANCELLED
    assert result.metadata == {"generation_id": 7003}
    assert [event.type for event in stream][-1] == "job:cancelled"
    assert client.cancel("live-long") is CancelOutcome.ALREADY_ENDED
    assert client.status("live-long").status == JobStateStatus.CANCELLED
    raw = redis.Redis.from_url(live.url)
    assert not raw.exists(NAMES.cancel("live-long"), NAMES.attempts("live-long"), NAMES.running("live-long"))


def test_a_refused_job_echoes_its_metadata_and_quotes_values_as_json(live):
    client = NpcVideoClient(live.url)
    stream = client.events(job_id="live-refused", block_ms=60_000)
    raw = redis.Redis.from_url(live.url)  # as a producer in another language would send it: no client check
    body = {**envelope("live-refused", quality_preset="ultra"), "metadata": {"generation_id": 7004}}
    raw.xadd(NAMES.lane("normal"), {"job": json.dumps(body)})
    result = client.wait("live-refused", timeout_s=60)
    assert result.status == JobStatus.FAILED and result.error_code == ErrorCode.INVALID_PARAMS
    assert '(got "ultra")' in (result.error_message or "")
    assert result.metadata == {"generation_id": 7004} and result.contract_version == CONTRACT_VERSION
    (failed,) = list(stream)
    assert failed.type == "job:failed" and not failed.retryable and failed.metadata == {"generation_id": 7004}


def test_another_major_version_is_refused_by_the_worker(live):
    client = NpcVideoClient(live.url)
    raw = redis.Redis.from_url(live.url)
    raw.xadd(NAMES.lane("normal"), {"job": json.dumps({**envelope("live-v2"), "contract_version": "2.0"})})
    result = client.wait("live-v2", timeout_s=60)
    assert result.error_code == ErrorCode.INVALID_PARAMS
    assert (result.error_message or "").startswith("contract_version: major version 2 is not spoken here")


def test_a_duplicate_entry_pushes_the_stored_result_again_without_a_second_event(live):
    client = NpcVideoClient(live.url)
    raw = redis.Redis.from_url(live.url)
    client.submit(envelope("live-dup", seed=3))
    first = client.wait("live-dup", timeout_s=120)
    with pytest.raises(JobAlreadyEnded, match=r"job live-dup already ended \(completed\)"):
        client.submit(envelope("live-dup", seed=3))  # the client refuses; another producer's duplicate entry:
    raw.xadd(NAMES.lane("normal"), {"job": json.dumps(envelope("live-dup", seed=3))})
    wait_until(lambda: raw.llen(NAMES.done("live-dup")) == 2, timeout_s=60, what="the second push")
    again = json.loads(raw.lindex(NAMES.done("live-dup"), -1))
    assert again["job_id"] == "live-dup" and again["status"] == "completed" and again["url"] == first.url
    assert client.result("live-dup") == first  # the result key is unchanged
    completed = [e for e in client.events(job_id="live-dup", since="0-0", block_ms=200) if e.type == "job:completed"]
    assert len(completed) == 1
