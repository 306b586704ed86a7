"""The retry policy, in one place: which failed attempts run again, and after how long.

Attempts are runs started (worker.queue.runs counts them). A retryable failure runs again after
`backoff_ms x 2^(attempt-1)` until `max_attempts` runs have started; out-of-memory is retried once only (the same
job on the same device usually fails the same way); every other code is final at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError

OUT_OF_MEMORY_ATTEMPTS = 2


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_ms: int

    def delay_s(self, error: JobError, attempt: int) -> float | None:
        """Seconds until the next attempt, or None when this failure is final."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.code == ErrorCode.OUT_OF_MEMORY and attempt >= OUT_OF_MEMORY_ATTEMPTS:
            return None
        return float(self.backoff_ms / 1000 * 2 ** (attempt - 1))

    def gave_up(self, attempt: int) -> JobError | None:
        """The error that ends a run which starts beyond the limit (every earlier run died with its worker), else
        None."""
        if attempt <= self.max_attempts:
            return None
        return JobError(
            ErrorCode.INTERNAL_ERROR,
            f"gave up after {attempt - 1} runs started (a worker may have died on this job each time)",
        )
