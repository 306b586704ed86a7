"""A job's state (and, once it completed, its result) as pixsim7's ProviderStatusResult, which pixsim7's poller reads
and assigns to: a fresh, mutable object each time."""

from __future__ import annotations

from typing import Any

from pixsim7.backend.main.domain import ProviderStatus
from pixsim7.backend.main.services.provider.base import ProviderStatusResult

from npc_video_client.contract import JobResult, JobState, JobStateStatus

RUNNING = {JobStateStatus.RUNNING, JobStateStatus.RETRYING}
ENDED_BADLY = {
    JobStateStatus.FAILED: ProviderStatus.FAILED,
    JobStateStatus.EXPIRED: ProviderStatus.FAILED,  # pixsim7 has no expiry state: the deadline passed
    JobStateStatus.CANCELLED: ProviderStatus.CANCELLED,
}


def retrievable(url: str | None) -> bool:
    """pixsim7 downloads the clip over HTTP: only an http(s) URL is one it can fetch (a file:// URL of a worker's
    local storage is not; docs/integrations/pixsim7.md, "Playable outputs")."""
    return url is not None and url.startswith(("http://", "https://"))


def state_metadata(state: JobState) -> dict[str, Any]:
    return {
        "npc_status": state.status.value,
        "attempt": state.attempt,
        "step": state.step,
        "steps": state.steps,
        "worker": state.worker,
        "error_code": None if state.error_code is None else state.error_code.value,
    }


def provider_status(state: JobState) -> ProviderStatusResult:
    """A job that has not completed: queued is PENDING; running or waiting for a retry is PROCESSING with its
    progress; failed or expired is FAILED, cancelled CANCELLED, with the worker's message."""
    metadata = state_metadata(state)
    if state.status == JobStateStatus.QUEUED:
        return ProviderStatusResult(status=ProviderStatus.PENDING, progress=0.0, metadata=metadata)
    if state.status in RUNNING:
        return ProviderStatusResult(status=ProviderStatus.PROCESSING, progress=state.progress, metadata=metadata)
    message = state.error_message or f"the npc-video job ended {state.status.value}"
    return ProviderStatusResult(
        status=ENDED_BADLY[state.status], progress=state.progress, error_message=message, metadata=metadata
    )


def completed_status(job_id: str, state: JobState, result: JobResult) -> ProviderStatusResult:
    """A completed job: the clip's URLs, size and length from its result."""
    return ProviderStatusResult(
        status=ProviderStatus.COMPLETED,
        video_url=result.url,
        thumbnail_url=result.thumbnail_url,
        progress=1.0,
        width=result.width,
        height=result.height,
        duration_sec=result.duration_sec,
        provider_video_id=job_id,
        has_retrievable_media_url=retrievable(result.url),
        metadata=state_metadata(state)
        | {"storage_key": result.storage_key, "seed": result.seed, "model": result.model},
    )
