"""Stage 5, endings: how a run ends, or runs again; the one place where an outcome becomes a terminal write or a
retry.

A completed result, or the error that stopped a run (or refused a payload before any run), becomes the final
event (job:completed, job:failed, job:expired or job:cancelled), the stored result and, for failures, a dead
letter, all written by worker.queue.outcomes in one atomic step. A failure the retry policy (worker.queue.retry)
allows again becomes a retryable job:failed and a later run of the same entry. An entry of a job that already
ended is acknowledged as a duplicate; a run that never began (a stop while it waited for the device) is let go.
Counted on /metrics once, when the write happened.

A warm (pre-generation) job ends with its final event only: no result, no state, no dead letter, and a failure is
final (dropped, never retried); one that gave way to a real job (`preempted`) is let go to run again later; one
its producer cancelled ends `cancelled`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from pydantic import BaseModel

from npc_video_client.contract import (
    JobCancelledEvent,
    JobCompletedEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobResult,
    JobStatus,
)
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from worker.failures import failure_result
from worker.job import PreparedJob, request_summary
from worker.metrics import WorkerMetrics
from worker.queue.events import EventWriter
from worker.queue.job_state import JobStates, Progress
from worker.queue.leases import Lease, Leases
from worker.queue.outcomes import Outcomes, dead_letter_error
from worker.queue.retry import RetryPolicy
from worker.queue.runs import Run, RunGate, RunRegistry
from worker.queue.waiting import RedisWaiter

log = logging.getLogger(__name__)
WARM_OUTCOME_OF = {JobStatus.COMPLETED: "finished", JobStatus.CANCELLED: "cancelled"}  # else "failed"


class Endings:
    def __init__(
        self,
        *,
        events: EventWriter,
        outcomes: Outcomes,
        redis: RedisWaiter,
        leases: Leases,
        runs: RunRegistry,
        gate: RunGate,
        states: JobStates,
        metrics: WorkerMetrics,
        policy: RetryPolicy,
        refresh_urls: Callable[[JobResult], JobResult],
    ) -> None:
        self.events = events
        self.outcomes = outcomes
        self.redis = redis
        self.leases = leases
        self.runs = runs
        self.gate = gate
        self.states = states
        self.metrics = metrics
        self.policy = policy
        self.refresh_urls = refresh_urls
        self.jobs_done = 0

    def failed(self, run: Run, error: JobError, partial: JobResult | None, *, batched: bool = False) -> None:
        """A failed attempt: run it again later when the retry policy says so (alone, if it failed in a batch:
        an out-of-memory batch retries its members one by one), else end the job."""
        delay_s = None if run.lease.warm else self.policy.delay_s(error, run.attempt)
        if delay_s is None:
            self.end(run.lease, run.job_id, error, run=run, partial=partial)
            return
        event = self.failed_event(run.job_id, error, run.attempt, retryable=True, metadata=run.metadata)
        state = self.states.retrying(run.job_id, run.attempt, run.progress, error)
        self.redis.call(lambda: self.outcomes.attempt_failed(run.job_id, event, run.token, state))
        self.runs.untrack(run)
        self.leases.retry_later(run.lease, delay_s, solo=batched)
        self.metrics.observe_retry(error.code)
        log.warning("attempt %d failed (%s); retrying in %.1f s", run.attempt, error.code.value, delay_s)

    def end(
        self,
        lease: Lease,
        job_id: str,
        error: JobError | None,
        *,
        run: Run | None = None,
        partial: JobResult | None = None,
        result: JobResult | None = None,
        metadata: dict[str, Any] | None = None,
        result_key: bool = True,
    ) -> None:
        """The terminal write of a job: completed (`result`) or ended by `error`. `metadata` is the envelope's
        when there is no run (a payload refused before any run); `result_key` is False for an entry without a
        usable job id (no result is stored for it, only its event and dead letter)."""
        warm = lease.warm
        result_key = result_key and not warm
        attempt = run.attempt if run else 0
        metadata = run.metadata if run else metadata
        dead_error = None
        if result is not None:
            event: BaseModel = self.events.stamp(JobCompletedEvent, **result.model_dump(exclude={"status"}))
        else:
            assert error is not None, "an ending needs a result or an error"
            result = failure_result(job_id, error, partial, metadata)
            if isinstance(error, JobCancelled):
                event = self.events.stamp(JobCancelledEvent, job_id=job_id, metadata=metadata)
            elif isinstance(error, DeadlineExceeded):
                event = self.events.stamp(JobExpiredEvent, job_id=job_id, deadline=error.deadline_ms, metadata=metadata)
            else:
                event = self.failed_event(job_id, error, attempt, retryable=False, metadata=metadata)
                if not warm:
                    dead_error = dead_letter_error(job_id, error.code.value, error.message, attempt)
        stored = result
        progress = run.progress if run else Progress()
        state = self.states.final(result, attempt, progress) if result_key else None
        written = self.redis.call(
            lambda: self.outcomes.finish(
                lease,
                job_id,
                event,
                result=stored if result_key else None,
                token=run.token if run else "",
                dead_error=dead_error,
                state=state,
            )
        )
        if run is not None:
            self.runs.untrack(run)
        self.leases.release(lease)
        if not written:
            log.info("job had already ended elsewhere; this run's %s outcome was not written", result.status.value)
            self.metrics.duplicates.inc()
            return
        if warm:
            outcome = WARM_OUTCOME_OF.get(result.status, "failed")
            if outcome == "finished" and result.cache_hit:
                outcome = "already_warm"
            self.metrics.warm_jobs.labels(outcome=outcome).inc()
            log.info("warm job ended: %s", outcome if result.error_message is None else result.error_message)
            return
        self.metrics.observe_final(result)
        self.jobs_done += 1
        if result.status == JobStatus.COMPLETED:
            log.info("job completed in %.0f ms (cache hit: %s)", result.timings.total_ms, result.cache_hit)
        else:
            log.info("job ended %s: %s", result.status.value, result.error_message)

    def gave_up(self, run: Run, prepared: PreparedJob) -> bool:
        """A run that began one beyond max_attempts (every earlier run died with its worker) ends here: True."""
        error = self.policy.gave_up(run.attempt)
        if error is None:
            return False
        partial = request_summary(run.job_id, prepared.request, run.metadata)
        self.end(run.lease, run.job_id, error, run=run, partial=partial)
        return True

    def duplicate(self, lease: Lease, job_id: str) -> None:
        """An entry of a job that already ended: acknowledged, and its stored result pushed to waiting clients."""
        stored = self.redis.call(lambda: self.outcomes.stored_result(job_id))
        refreshed = self.refresh_urls(stored) if stored is not None else None
        self.redis.call(lambda: self.outcomes.duplicate(lease, job_id, refreshed))
        self.metrics.duplicates.inc()
        self.leases.release(lease)

    def preempted(self, run: Run) -> None:
        """A warm run that gave way to a real job: let go like a run that never began, to run again later."""
        self.abandon(run)
        self.metrics.warm_jobs.labels(outcome="preempted").inc()

    def abandon(self, run: Run) -> None:
        """A claimed run that never began (a stop while it waited for the device): its lock is let go and its
        entry waits to be handed back."""
        try:
            self.gate.release(run.job_id, run.token)
        except redis.RedisError as exc:
            log.warning("could not undo the start of job %s (%s); its lock expires on its own", run.job_id, exc)
        self.runs.untrack(run)
        self.leases.put_back(run.lease)
        self.metrics.in_flight.dec()

    def failed_event(
        self, job_id: str, error: JobError, attempt: int, *, retryable: bool, metadata: dict[str, Any] | None
    ) -> BaseModel:
        return self.events.stamp(
            JobFailedEvent,
            job_id=job_id,
            error_code=error.code,
            error_message=error.message,
            retryable=retryable,
            attempt=attempt,
            metadata=metadata,
        )
