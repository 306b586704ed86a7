"""The one exception type a job raises on purpose; everything else becomes internal_error."""

from __future__ import annotations

from npc_video_client.contract import RETRYABLE_CODES, ErrorCode
from npc_video_client.messages import MESSAGE_LIMIT, shorten


class JobError(Exception):
    """A failure with a contract error code and a message written for the producer (at most MESSAGE_LIMIT
    characters: it is stored in results, events and dead letters)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        message = shorten(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class JobCancelled(JobError):
    """Raised from the per-step callback to stop the pipeline between denoising steps."""

    def __init__(self, job_id: str) -> None:
        super().__init__(ErrorCode.CANCELLED, f"job {job_id} was cancelled")


class DeadlineExceeded(JobError):
    def __init__(self, deadline_ms: int) -> None:
        super().__init__(ErrorCode.DEADLINE_EXCEEDED, f"the job's deadline {deadline_ms} (unix ms) has passed")
        self.deadline_ms = deadline_ms
