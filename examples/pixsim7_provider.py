"""npc-video-worker as a pixsim7 generation provider: submit a generation, read its status, cancel it.

Copy this file into pixsim7's provider package and call it from its Provider's `execute`, `check_status` and
`cancel` (docs/integrations/pixsim7.md shows how). It needs the client distribution only
(`pip install ./clients/python`: redis and pydantic) and speaks asyncio, as pixsim7's backend does.

- `submit(generation)` XADDs an `npc_response` job to the lane of the generation's priority, with pixsim7's ids in
  the job's `metadata`, which the worker echoes in every event and in the result (the relay,
  `npc-worker relay --format pixsim7`, lifts `generation_id` and `user_id` from there into pixsim7's events).
- `status(job_id)` answers with the fields of pixsim7's ProviderStatusResult.
- `cancel(job_id)` stops the job at its next denoising step.

Priorities (pixsim7: 0-20, default 5) map to the worker's lanes, which are drained strictly in order:
>= 15 `high`, >= 5 `normal`, below 5 `low`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from npc_video_client.aio import AsyncNpcVideoClient
from npc_video_client.contract import JobResult, JobStatus, NpcResponseParams
from npc_video_client.names import Lane

log = logging.getLogger(__name__)
PRIORITY_RANGE = (0, 20)
HIGH_FROM = 15
NORMAL_FROM = 5
PROGRESS_SCAN = 500  # how many of the newest events `status` looks through for a running job's progress
PARAM_NAMES = frozenset(NpcResponseParams.model_fields)
IMAGE_ALIASES = ("image_url", "source_image_url")  # pixsim7's image_to_video input, when npc_base_image is absent


class GenerationLike(Protocol):
    """What is read of pixsim7's Generation model."""

    id: int | None
    user_id: int
    priority: int
    retry_count: int
    canonical_params: dict[str, Any]
    raw_params: dict[str, Any]


@dataclass(frozen=True)
class NpcVideoStatus:
    """pixsim7's ProviderStatusResult fields; `status` is one of its VideoStatus values."""

    status: str  # pending | processing | completed | failed | cancelled
    video_url: str | None = None
    thumbnail_url: str | None = None
    progress: float | None = None  # 0.0 to 1.0
    width: int | None = None
    height: int | None = None
    duration_sec: float | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def lane_for(priority: int) -> Lane:
    """pixsim7's 0-20 priority as a lane: >= 15 high, >= 5 normal, else low."""
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"generation priority must be an integer {low}..{high} (pixsim7's range), got {priority!r}")
    if priority >= HIGH_FROM:
        return Lane.HIGH
    return Lane.NORMAL if priority >= NORMAL_FROM else Lane.LOW


def job_id_for(generation: GenerationLike) -> str:
    """One job per attempt of a generation: the worker never runs a job id again once it has a final result, and
    pixsim7 retries a failed generation by running it again (its retry_count goes up)."""
    if generation.id is None:
        raise ValueError("the generation has no id yet; save it before submitting it")
    return f"pixsim7-{generation.id}-{generation.retry_count}"


def npc_params(generation: GenerationLike) -> dict[str, Any]:
    """The job's params from the generation's canonical params (else its raw params): the worker's parameter names
    (docs/contract.md), and pixsim7's `image_url` as the base image. Other keys are pixsim7's own and left out."""
    given = generation.canonical_params or generation.raw_params
    params = {key: value for key, value in given.items() if key in PARAM_NAMES}
    if "npc_base_image" not in params:
        for alias in IMAGE_ALIASES:
            if given.get(alias):
                params["npc_base_image"] = given[alias]
                break
    return params


def provider_status(result: JobResult) -> NpcVideoStatus:
    """A final result in pixsim7's terms: an expired job is a failed generation (pixsim7 has no expiry state)."""
    metadata = result.metadata or {}
    if result.status == JobStatus.COMPLETED:
        return NpcVideoStatus(
            status="completed",
            video_url=result.url,
            thumbnail_url=result.thumbnail_url,
            progress=1.0,
            width=result.width,
            height=result.height,
            duration_sec=result.duration_sec,
            metadata=metadata,
        )
    status = "cancelled" if result.status == JobStatus.CANCELLED else "failed"
    return NpcVideoStatus(status=status, error_message=result.error_message, metadata=metadata)


class NpcVideoProvider:
    provider_id = "npc-video"

    def __init__(self, client: AsyncNpcVideoClient) -> None:
        self.client = client

    async def submit(self, generation: GenerationLike) -> str:
        """Enqueue the generation as an npc_response job; returns the job id (pixsim7's provider_job_id).
        JobRejected (from the client) names every invalid parameter before anything is enqueued."""
        job_id = job_id_for(generation)
        envelope = {
            "job_id": job_id,
            "operation_type": "npc_response",
            "params": npc_params(generation),
            "metadata": {
                "generation_id": generation.id,
                "user_id": generation.user_id,
                "retry_count": generation.retry_count,
            },
        }
        return await self.client.submit(envelope, lane=lane_for(generation.priority))

    async def status(self, job_id: str) -> NpcVideoStatus:
        """The final result, or `processing` (a worker runs it; `progress` from its latest progress event) or
        `pending` (queued, or waiting for a retry after a failed attempt)."""
        found = await self.client.status(job_id)
        if isinstance(found, JobResult):
            return provider_status(found)
        if not found.running:
            return NpcVideoStatus(status="pending")
        return NpcVideoStatus(status="processing", progress=await self._latest_progress(job_id))

    async def cancel(self, job_id: str) -> bool:
        """True when the cancel was asked for; False when the job had already ended (as pixsim7 expects)."""
        if await self.client.result(job_id) is not None:
            return False
        await self.client.cancel(job_id)
        return True

    async def _latest_progress(self, job_id: str) -> float | None:
        """The job's newest progress among the newest PROGRESS_SCAN events; None when there is none there (the
        run has not reached its first step, or the events stream moved on)."""
        entries: Any = await self.client.redis.xrevrange(self.client.names.events, count=PROGRESS_SCAN)
        for entry_id, fields in entries:
            try:
                event = json.loads(fields[b"event"])
            except (KeyError, ValueError) as exc:  # another writer's entry: the worker's own always parse
                log.debug("events entry %r is not an event (%s); skipped", entry_id, exc)
                continue
            if event.get("job_id") == job_id and event.get("type") == "job:progress":
                return float(event["progress"])
        return None
