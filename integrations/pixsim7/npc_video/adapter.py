"""NpcVideoProvider: pixsim7's Provider for the npc-video-worker, with the exact signatures ProviderService calls.

ProviderService (pixsim7 3d20eed89) runs a generation as: map_parameters -> (requires_file_preparation) ->
prepare_execution_params(generation=, mapped_params=, resolve_source_fn=, account=) -> execute(operation_type=,
account=, params=); it stores what prepare returned as `generation.resolved_params` and a retry executes those again.
So the job id is made in `execute`, fresh on every call: a retry is a new job (the worker never runs an ended job id
again), and the generation id travels in the job's `metadata`. Its status poller calls check_status(account=,
provider_job_id=, operation_type=) until a final status, and cancel(account=, provider_job_id=) on a user's cancel.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from pixsim7.backend.main.domain import Generation, OperationType, ProviderStatus
from pixsim7.backend.main.domain.enums import GenerationErrorCode
from pixsim7.backend.main.domain.providers import ProviderAccount
from pixsim7.backend.main.services.provider.base import (
    GenerationResult,
    JobNotFoundError,
    Provider,
    ProviderError,
    ProviderStatusResult,
    UnsupportedOperationError,
)

from npc_video_client.aio import AsyncNpcVideoClient
from npc_video_client.client_errors import JobAlreadyEnded, RedisUnavailable, UnknownJob
from npc_video_client.contract import JobStateStatus
from npc_video_client.protocol import CancelOutcome, JobRejected
from npc_video_client.warming import WarmStatus

from .config import Settings
from .images import ResolveSource, worker_image
from .mapping import base_image_source, lane_for, npc_job_params
from .statuses import completed_status, provider_status

log = logging.getLogger(__name__)

PROVIDER_ID = "npc-video"
JOB_ID_PREFIX = "pixsim7"


def new_job_id(generation_id: int) -> str:
    """`pixsim7-{generation id}-{12 hex}`: one per execute call, so pixsim7's retries are new jobs."""
    return f"{JOB_ID_PREFIX}-{generation_id}-{uuid.uuid4().hex[:12]}"


def unavailable(exc: RedisUnavailable) -> ProviderError:
    """An outage: retryable, and a code pixsim7's poller counts as transient (it backs off and polls again)."""
    return ProviderError(str(exc), error_code=GenerationErrorCode.PROVIDER_UNAVAILABLE.value, retryable=True)


T = TypeVar("T")


async def _as_provider_errors(call: Awaitable[T]) -> T:
    """A warm call's errors as pixsim7's: a reaction that is no job is a final param_invalid, an outage retryable."""
    try:
        return await call
    except JobRejected as exc:
        raise ProviderError(str(exc), error_code=GenerationErrorCode.PARAM_INVALID.value, retryable=False) from exc
    except RedisUnavailable as exc:
        raise unavailable(exc) from exc


class NpcVideoProvider(Provider):
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = Settings.from_environment()
        self._clients: dict[asyncio.AbstractEventLoop, AsyncNpcVideoClient] = {}

    @property
    def provider_id(self) -> str:
        return PROVIDER_ID

    @property
    def supported_operations(self) -> list[OperationType]:
        return [OperationType.IMAGE_TO_VIDEO]

    def map_parameters(self, operation_type: OperationType, params: dict[str, Any]) -> dict[str, Any]:
        """What ProviderService persists as the submission's payload: the NPC job's params and its base image's
        source (a reference, resolved in prepare_execution_params)."""
        self._check_operation(operation_type)
        return {"npc_params": npc_job_params(params), "base_image_source": base_image_source(params)}

    def requires_file_preparation(self) -> bool:
        return True

    async def prepare_execution_params(  # type: ignore[override]  # ProviderService's call, not base.py's stub
        self,
        generation: Generation,
        mapped_params: dict[str, Any],
        resolve_source_fn: ResolveSource,
        account: ProviderAccount | None = None,
    ) -> dict[str, Any]:
        """Everything a run needs, cached by pixsim7 as the generation's resolved_params for its retries: the base
        image as the workers read it, the lane of the generation's priority and the generation's ids."""
        if generation.id is None:
            raise ProviderError("the generation has no id yet; pixsim7 saves it before running it", retryable=False)
        return {
            "npc_params": await self._job_params(mapped_params, generation.user_id, resolve_source_fn),
            "lane": lane_for(generation.priority).value,
            "metadata": {"generation_id": generation.id, "user_id": generation.user_id},
        }

    async def execute(
        self, operation_type: OperationType, account: ProviderAccount, params: dict[str, Any]
    ) -> GenerationResult:
        """Submit a new job (a fresh job id on every call, retries included) to the lane of the priority."""
        self._check_operation(operation_type)
        missing = [key for key in ("npc_params", "lane", "metadata") if key not in params]
        if missing:
            raise ProviderError(
                f"execute got no {', '.join(missing)}: ProviderService prepares them (prepare_execution_params)",
                retryable=False,
            )
        job_id = new_job_id(params["metadata"]["generation_id"])
        envelope = {
            "job_id": job_id,
            "operation_type": "npc_response",
            "params": params["npc_params"],
            "metadata": params["metadata"],
        }
        client = await self._client()
        try:
            await client.submit(envelope, lane=params["lane"])
        except JobRejected as exc:
            raise ProviderError(
                f"npc_params: {exc}", error_code=GenerationErrorCode.PARAM_INVALID.value, retryable=False
            ) from exc
        except RedisUnavailable as exc:
            raise unavailable(exc) from exc
        except JobAlreadyEnded as exc:  # a fresh uuid collided with a stored job: nothing was enqueued, try again
            raise ProviderError(str(exc), retryable=True) from exc
        log.info("npc-video job %s submitted to lane %s", job_id, params["lane"])
        return GenerationResult(
            provider_job_id=job_id,
            status=ProviderStatus.PENDING,
            metadata={"npc_job_id": job_id, "lane": params["lane"]},
        )

    async def check_status(
        self,
        account: ProviderAccount,
        provider_job_id: str,
        operation_type: OperationType | None = None,
    ) -> ProviderStatusResult:
        """The job's state as a new ProviderStatusResult; JobNotFoundError for an id with no state and no result
        (never submitted here, or expired), so pixsim7 fails the generation instead of waiting for its stuck timeout."""
        client = await self._client()
        try:
            state = await client.status(provider_job_id)
            if state.status != JobStateStatus.COMPLETED:
                return provider_status(state)
            result = await client.result(provider_job_id)
        except UnknownJob as exc:
            raise JobNotFoundError(self.provider_id, provider_job_id) from exc
        except RedisUnavailable as exc:
            raise unavailable(exc) from exc
        if result is None:  # its state says completed, its result expired: the clip's URLs are gone
            raise JobNotFoundError(self.provider_id, provider_job_id)
        return completed_status(provider_job_id, state, result)

    async def cancel(self, account: ProviderAccount, provider_job_id: str) -> bool:
        """True when the cancel was asked for: the job ends cancelled at its next step, unless it completes first.
        False when it had already ended, or is unknown."""
        client = await self._client()
        try:
            outcome = await client.cancel(provider_job_id)
        except RedisUnavailable as exc:
            raise unavailable(exc) from exc
        if outcome is CancelOutcome.UNKNOWN:
            log.warning("cancel of npc-video job %s: no such job (its state and result expired?)", provider_job_id)
        return outcome is CancelOutcome.CANCELLED

    async def warm(
        self, generations: Sequence[dict[str, Any]], *, user_id: int, resolve_source_fn: ResolveSource
    ) -> list[str]:
        """Have an NPC's likely reactions made before they are asked for (e.g. when it enters the player's scene):
        each item is the params of a generation the game may create later, as it will create it (`npc_params`, the
        prompt, `composition_assets`, ...). Each becomes a warm job with exactly the params that generation's job
        will have (mapped and its image resolved as for a generation), so when it comes its video is already
        stored (or being made). Warming the same reactions again is harmless. Returns the warm job ids."""
        jobs = await self._warm_params(generations, user_id, resolve_source_fn)
        client = await self._client()
        ids = await _as_provider_errors(client.warm({}, jobs, metadata={"user_id": user_id}))
        log.info("npc-video: %d reaction(s) of user %s warming", len(ids), user_id)
        return ids

    async def warm_status(
        self, generations: Sequence[dict[str, Any]], *, user_id: int, resolve_source_fn: ResolveSource
    ) -> WarmStatus:
        """How many of these reactions have their video ready (the same items as given to `warm`)."""
        jobs = await self._warm_params(generations, user_id, resolve_source_fn)
        client = await self._client()
        return await _as_provider_errors(client.warm_status({}, jobs))

    async def warm_cancel(
        self, generations: Sequence[dict[str, Any]], *, user_id: int, resolve_source_fn: ResolveSource
    ) -> list[str]:
        """Drop the warm jobs of these reactions (the same items as given to `warm`), e.g. when the NPC leaves the
        scene: they stop taking the workers' idle time; videos already made stay. Returns the warm job ids."""
        jobs = await self._warm_params(generations, user_id, resolve_source_fn)
        client = await self._client()
        ids = await _as_provider_errors(client.warm_cancel({}, jobs))
        log.info("npc-video: %d warm reaction(s) of user %s cancelled", len(ids), user_id)
        return ids

    async def _warm_params(
        self, generations: Sequence[dict[str, Any]], user_id: int, resolve_source_fn: ResolveSource
    ) -> list[dict[str, Any]]:
        mapped = [self.map_parameters(OperationType.IMAGE_TO_VIDEO, params) for params in generations]
        return [await self._job_params(item, user_id, resolve_source_fn) for item in mapped]

    async def _job_params(
        self, mapped_params: dict[str, Any], user_id: int, resolve_source_fn: ResolveSource
    ) -> dict[str, Any]:
        """The job's params from what map_parameters returned: its base image as the workers read it."""
        params = dict(mapped_params["npc_params"])
        source = mapped_params.get("base_image_source")
        if source is not None:
            params["npc_base_image"] = await worker_image(source, user_id, resolve_source_fn)
        return params

    def _check_operation(self, operation_type: OperationType) -> None:
        if operation_type not in self.supported_operations:
            raise UnsupportedOperationError(self.provider_id, operation_type.value)

    async def _client(self) -> AsyncNpcVideoClient:
        """One client per event loop (a redis.asyncio connection belongs to the loop it was made on): on
        NPC_VIDEO_REDIS_URL, or on pixsim7's own Redis client (`decode_responses=True`) when that is unset."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            if self.settings.redis_url is not None:
                client = AsyncNpcVideoClient(self.settings.redis_url, prefix=self.settings.prefix)
            else:
                from pixsim7.backend.main.infrastructure.redis import get_redis

                client = AsyncNpcVideoClient(client=await get_redis(), prefix=self.settings.prefix)
            self._clients = {known: held for known, held in self._clients.items() if not known.is_closed()}
            self._clients[loop] = client
        return client
