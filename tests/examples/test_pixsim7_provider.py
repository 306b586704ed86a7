"""examples/pixsim7_provider.py against a real Redis: priority to lane, generation to envelope, every result and
queue state to pixsim7's status fields, cancel; and one generation through a real worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import redis

from examples.pixsim7_provider import NpcVideoProvider, NpcVideoStatus, job_id_for, lane_for
from npc_video_client.aio import AsyncNpcVideoClient
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobProgressEvent,
    JobResult,
    JobStatus,
)
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import JobRejected
from tests.support.jobs import data_uri, params, png_bytes
from tests.support.redis_server import RedisServer
from tests.support.video import path_of
from worker.queue.events import EventWriter

NAMES = StreamNames("npc")
T = TypeVar("T")


@dataclass
class Generation:
    """The fields the provider reads of pixsim7's Generation."""

    id: int | None = 4711
    user_id: int = 3
    priority: int = 5
    retry_count: int = 0
    canonical_params: dict[str, Any] = field(default_factory=dict)
    raw_params: dict[str, Any] = field(default_factory=dict)


def with_provider(redis_server: RedisServer, action: Callable[[NpcVideoProvider], Awaitable[T]]) -> T:
    """Run `action(provider)` on a fresh event loop with its own client, closed afterwards."""

    async def run() -> T:
        client = AsyncNpcVideoClient(redis_server.url)
        try:
            return await action(NpcVideoProvider(client))
        finally:
            await client.close()

    return asyncio.run(run())


def lane_entries(client: redis.Redis, lane: Lane) -> list[dict[str, Any]]:
    raw: Any = client.xrange(NAMES.lane(lane))
    return [json.loads(fields[b"job"]) for _id, fields in raw]


def store_result(client: redis.Redis, **fields: Any) -> None:
    """A final result as the worker's terminal write leaves it."""
    result = JobResult(contract_version=CONTRACT_VERSION, **fields)
    client.set(NAMES.result(result.job_id), result.model_dump_json())


@pytest.mark.parametrize(
    ("priority", "lane"),
    [(0, Lane.LOW), (4, Lane.LOW), (5, Lane.NORMAL), (14, Lane.NORMAL), (15, Lane.HIGH), (20, Lane.HIGH)],
)
def test_priorities_map_to_lanes(priority, lane):
    assert lane_for(priority) == lane


@pytest.mark.parametrize("priority", [-1, 21, 5.0, True, "5"])
def test_priorities_outside_pixsim7s_range_are_refused(priority):
    with pytest.raises(ValueError, match=r"generation priority must be an integer 0..20 \(pixsim7's range\), got"):
        lane_for(priority)


def test_a_generation_becomes_an_npc_response_job_on_the_lane_of_its_priority(redis_server, redis_client):
    image = data_uri(png_bytes())
    canonical = params(npc_base_image=None) | {"image_url": image, "provider_hint": "pixsim7-only", "model": "x"}
    generation = Generation(priority=17, retry_count=2, canonical_params=canonical)
    job_id = with_provider(redis_server, lambda provider: provider.submit(generation))
    assert job_id == "pixsim7-4711-2" == job_id_for(generation)
    assert lane_entries(redis_client, Lane.NORMAL) == [] and lane_entries(redis_client, Lane.LOW) == []
    (job,) = lane_entries(redis_client, Lane.HIGH)
    assert job["job_id"] == job_id and job["operation_type"] == "npc_response"
    assert job["metadata"] == {"generation_id": 4711, "user_id": 3, "retry_count": 2}
    assert job["params"] == params(npc_base_image=image)  # pixsim7's image_url as the base image, its own keys left out
    assert job["contract_version"] == CONTRACT_VERSION and isinstance(job["submitted_at"], int)


def test_raw_params_are_used_when_there_are_no_canonical_ones_and_npc_base_image_wins(redis_server, redis_client):
    generation = Generation(priority=0, raw_params=params(npc_base_image="s3://assets/a.png") | {"image_url": "x"})
    with_provider(redis_server, lambda provider: provider.submit(generation))
    (job,) = lane_entries(redis_client, Lane.LOW)
    assert job["params"]["npc_base_image"] == "s3://assets/a.png"


def test_invalid_params_or_an_unsaved_generation_enqueue_nothing(redis_server, redis_client):
    bad = Generation(canonical_params=params(intensity=1.5))
    with pytest.raises(JobRejected, match=r"params.intensity: Input should be less than or equal to 1 \(got 1.5\)"):
        with_provider(redis_server, lambda provider: provider.submit(bad))
    with pytest.raises(ValueError, match="the generation has no id yet"):
        with_provider(redis_server, lambda provider: provider.submit(Generation(id=None, canonical_params=params())))
    assert all(lane_entries(redis_client, lane) == [] for lane in Lane)


def test_final_results_map_to_pixsim7_statuses(redis_server, redis_client):
    metadata = {"generation_id": 4711}
    store_result(
        redis_client, job_id="ok", status=JobStatus.COMPLETED, url="https://v.example/a.mp4",
        thumbnail_url="https://v.example/a.jpg", width=512, height=288, duration_sec=3.0, metadata=metadata,
    )  # fmt: skip
    store_result(
        redis_client, job_id="bad", status=JobStatus.FAILED, error_code=ErrorCode.INVALID_IMAGE,
        error_message="npc_base_image is not an image", metadata=metadata,
    )  # fmt: skip
    store_result(
        redis_client, job_id="late", status=JobStatus.EXPIRED, error_code=ErrorCode.DEADLINE_EXCEEDED,
        error_message="deadline exceeded", metadata=metadata,
    )  # fmt: skip
    store_result(
        redis_client, job_id="stop", status=JobStatus.CANCELLED, error_code=ErrorCode.CANCELLED,
        error_message="cancelled", metadata=metadata,
    )  # fmt: skip

    async def all_of(provider: NpcVideoProvider) -> list[NpcVideoStatus]:
        return [await provider.status(job_id) for job_id in ("ok", "bad", "late", "stop")]

    ok, bad, late, stop = with_provider(redis_server, all_of)
    assert ok == NpcVideoStatus(
        status="completed", video_url="https://v.example/a.mp4", thumbnail_url="https://v.example/a.jpg",
        progress=1.0, width=512, height=288, duration_sec=3.0, metadata=metadata,
    )  # fmt: skip
    assert bad == NpcVideoStatus(status="failed", error_message="npc_base_image is not an image", metadata=metadata)
    assert late == NpcVideoStatus(status="failed", error_message="deadline exceeded", metadata=metadata)
    assert stop == NpcVideoStatus(status="cancelled", error_message="cancelled", metadata=metadata)


def test_unfinished_jobs_are_pending_or_processing_with_the_latest_progress(redis_server, redis_client):
    assert with_provider(redis_server, lambda provider: provider.status("queued")) == NpcVideoStatus(status="pending")
    redis_client.set(NAMES.running("busy"), "run-1", px=60_000)  # a worker holds the job's lock
    starting = with_provider(redis_server, lambda provider: provider.status("busy"))
    assert starting == NpcVideoStatus(status="processing", progress=None)  # no step yet
    writer = EventWriter(redis_client, NAMES, worker="gpu-a:cuda", maxlen=1000, channel=None)
    for job_id, step in (("busy", 1), ("other", 3), ("busy", 2), ("other", 4)):
        writer.add(
            redis_client, writer.stamp(JobProgressEvent, job_id=job_id, step=step, total_steps=4, progress=step / 4)
        )
    redis_client.xadd(NAMES.events, {"not-an-event": "x"})  # another writer's entry is passed over
    running = with_provider(redis_server, lambda provider: provider.status("busy"))
    assert running == NpcVideoStatus(status="processing", progress=0.5)
    redis_client.delete(NAMES.running("busy"))
    redis_client.set(NAMES.attempts("busy"), "1")  # a failed attempt, waiting for its retry
    assert with_provider(redis_server, lambda provider: provider.status("busy")) == NpcVideoStatus(status="pending")


def test_cancel_asks_the_worker_unless_the_job_already_ended(redis_server, redis_client):
    assert with_provider(redis_server, lambda provider: provider.cancel("running-job")) is True
    assert redis_client.get(NAMES.cancel("running-job")) == b"1"
    assert 0 < int(redis_client.ttl(NAMES.cancel("running-job"))) <= 24 * 3600  # nothing left behind for ever
    store_result(redis_client, job_id="done-job", status=JobStatus.COMPLETED, url="https://v.example/a.mp4")
    assert with_provider(redis_server, lambda provider: provider.cancel("done-job")) is False
    assert redis_client.exists(NAMES.cancel("done-job")) == 0


def test_a_generation_through_a_real_worker(redis_server, start_worker):
    start_worker()
    generation = Generation(priority=18, canonical_params=params(steps=1))

    async def submit_and_wait(provider: NpcVideoProvider) -> tuple[str, NpcVideoStatus]:
        job_id = await provider.submit(generation)
        await provider.client.wait(job_id, timeout_s=120)
        return job_id, await provider.status(job_id)

    job_id, status = with_provider(redis_server, submit_and_wait)
    assert status.status == "completed", status
    assert (status.width, status.height, status.progress) == (64, 64, 1.0)
    assert status.duration_sec is not None and status.duration_sec > 0
    assert status.metadata == {"generation_id": 4711, "user_id": 3, "retry_count": 0}
    assert status.video_url is not None and status.thumbnail_url is not None
    assert path_of(status.video_url).read_bytes()[4:8] == b"ftyp"  # an MP4 a player can open
    assert with_provider(redis_server, lambda provider: provider.cancel(job_id)) is False
