"""The one place where an exception becomes a result: every job failure passes through here."""

from __future__ import annotations

import gc
import logging
from typing import Any

import torch

from npc_video_client.contract import CONTRACT_VERSION, ErrorCode, JobResult, JobStatus
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError

log = logging.getLogger(__name__)


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def as_job_error(exc: BaseException) -> JobError:
    """Classify any exception; unexpected ones are logged with their traceback, never sent to producers."""
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError):
        log.warning("device out of memory: %s", exc)
        free_device_memory()
        return JobError(ErrorCode.OUT_OF_MEMORY, "the device ran out of memory; memory was freed")
    log.error("internal error", exc_info=exc)
    return JobError(ErrorCode.INTERNAL_ERROR, f"internal error ({type(exc).__name__}); see the worker log")


def failure_result(
    job_id: str, error: JobError, partial: JobResult | None = None, metadata: dict[str, Any] | None = None
) -> JobResult:
    """The final result of a job that did not complete; `partial` keeps what was resolved before failing,
    `metadata` is the envelope's (echoed)."""
    if isinstance(error, JobCancelled):
        status = JobStatus.CANCELLED
    elif isinstance(error, DeadlineExceeded):
        status = JobStatus.EXPIRED
    else:
        status = JobStatus.FAILED
    base = partial.model_dump() if partial is not None else {}
    base.update(
        job_id=job_id,
        status=status,
        error_code=error.code,
        error_message=error.message,
        url=None,
        thumbnail_url=None,
        storage_key=None,
        content_type=None,
        cache_hit=False,
        contract_version=CONTRACT_VERSION,
        metadata=metadata,
    )
    return JobResult.model_validate(base)
