"""worker.retry: which failed attempts run again, and after how long."""

from __future__ import annotations

import pytest

from npc_video_client.contract import RETRYABLE_CODES, ErrorCode
from npc_video_client.errors import JobCancelled, JobError
from worker.queue.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=4, backoff_ms=500)
FINAL_CODES = sorted(set(ErrorCode) - RETRYABLE_CODES)


@pytest.mark.parametrize("code", [ErrorCode.STORAGE_ERROR, ErrorCode.INTERNAL_ERROR])
def test_retryable_failures_back_off_doubling_until_the_last_attempt(code):
    error = JobError(code, "flaky")
    assert [POLICY.delay_s(error, attempt) for attempt in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, None, None]


def test_out_of_memory_is_retried_once_only():
    error = JobError(ErrorCode.OUT_OF_MEMORY, "oom")
    assert POLICY.delay_s(error, 1) == 0.5
    assert POLICY.delay_s(error, 2) is None


def test_out_of_memory_is_final_at_once_when_one_attempt_is_allowed():
    assert RetryPolicy(max_attempts=1, backoff_ms=500).delay_s(JobError(ErrorCode.OUT_OF_MEMORY, "oom"), 1) is None


@pytest.mark.parametrize("code", FINAL_CODES)
def test_other_codes_are_final_at_once(code):
    assert POLICY.delay_s(JobError(code, "no"), 1) is None


def test_a_cancelled_job_is_never_retried():
    assert POLICY.delay_s(JobCancelled("j"), 1) is None


def test_zero_backoff_retries_immediately():
    assert RetryPolicy(max_attempts=3, backoff_ms=0).delay_s(JobError(ErrorCode.INTERNAL_ERROR, "x"), 1) == 0.0


@pytest.mark.parametrize(("attempt", "gives_up"), [(1, False), (4, False), (5, True), (9, True)])
def test_a_run_beyond_max_attempts_gives_up(attempt, gives_up):
    error = POLICY.gave_up(attempt)
    assert (error is not None) is gives_up
    if error is not None:
        assert error.code is ErrorCode.INTERNAL_ERROR and f"after {attempt - 1} runs started" in error.message
