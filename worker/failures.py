"""The one place where an exception becomes a job error and a result: every job failure passes through here.

A failure of the pipeline call itself on a validated request is certain to repeat (the call is deterministic:
same request, same model, same seed), unless it is the device's or the process group's trouble (out of memory, a
CUDA, cuDNN or cuBLAS fault, a collective that timed out): those are worth another attempt, the others end the job
at once as a non-retryable internal_error instead of running three times to the same end.
"""

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


# Words in a RuntimeError raised by the device or the process group, not by the model's arithmetic on this request.
TRANSIENT_MARKERS = ("CUDA error", "CUBLAS_STATUS", "CUDNN_STATUS", "NCCL", "Gloo", "gloo", "timed out", "Timed out")


class CertainToRepeat(JobError):
    """An internal error that another attempt would meet again: never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, message)

    @property
    def retryable(self) -> bool:
        return False


def as_job_error(exc: BaseException, *, in_pipeline_call: bool = False) -> JobError:
    """Classify any exception; unexpected ones are logged with their traceback, never sent to producers.
    `in_pipeline_call`: raised by the pipeline call of a validated request (see the module's docstring)."""
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError):
        log.warning("device out of memory: %s", exc)
        free_device_memory()
        return JobError(ErrorCode.OUT_OF_MEMORY, "the device ran out of memory; memory was freed")
    log.error("internal error", exc_info=exc)
    name = type(exc).__name__
    if in_pipeline_call and not any(marker in str(exc) for marker in TRANSIENT_MARKERS):
        return CertainToRepeat(
            f"the model failed on this request ({name}); the same request would fail the same way, so it is not "
            "retried; see the worker log"
        )
    return JobError(ErrorCode.INTERNAL_ERROR, f"internal error ({name}); see the worker log")


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
