"""What a running job tells Redis and asks of it at every denoising step: progress events and cancellation.

A Redis outage during generation does not fail the job: these intermediate events and checks are skipped with a
warning (and not tried again for a short while, so an outage cannot stall every step); the terminal write waits
for Redis to come back instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future

import redis

from npc_video_client.contract import JobProgressEvent
from npc_video_client.errors import JobError
from worker.queue.events import EventWriter, ProgressThrottle
from worker.queue.job_state import JobStates, Progress
from worker.queue.runs import Run
from worker.queue.waiting import is_transient

log = logging.getLogger(__name__)
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
REDIS_RETRY_AFTER_S = 2.0


class RedisJobHooks:
    """The hooks (worker.job.JobHooks) of one run of a job."""

    def __init__(
        self,
        events: EventWriter,
        states: JobStates,
        client: redis.Redis,
        cancel_key: str,
        run: Run,
        *,
        progress_interval_ms: int,
        on_step: Callable[[], None],
    ) -> None:
        self.events = events
        self.states = states
        self.client = client
        self.cancel_key = cancel_key
        self.run = run
        self.throttle = ProgressThrottle(progress_interval_ms)
        self.on_step = on_step
        self._redis_down_until = 0.0
        self._begun: Future[int] | None = None
        self._gave_up: Callable[[int], JobError | None] | None = None

    def progress(self, step: int, total_steps: int) -> None:
        """A job:progress event with the job's running state, at most once per progress interval (the last step
        always)."""
        self.on_step()
        run = self.run
        run.progress = Progress(step, total_steps)
        if self.throttle.due(step, total_steps):
            event = self.events.stamp(
                JobProgressEvent,
                job_id=run.job_id,
                step=step,
                total_steps=total_steps,
                progress=run.progress.fraction,
                metadata=run.metadata,
            )
            state = self.states.running(run.job_id, run.attempt, run.progress)
            self._best_effort(lambda: self.events.emit(event, state))

    def begin_with(self, begun: Future[int], gave_up: Callable[[int], JobError | None]) -> None:
        """The run's begin (attempt counted, job:processing written) is under way on another thread: the first
        step waits for it, so no progress event comes before job:processing, and stops a run one too many."""
        self._begun = begun
        self._gave_up = gave_up

    def _await_begin(self) -> None:
        if self._begun is None:
            return
        begun, self._begun = self._begun, None
        attempt = begun.result()
        error = self._gave_up(attempt) if self._gave_up is not None else None
        if error is not None:
            raise error

    def cancel_requested(self) -> bool:
        self.on_step()
        self._await_begin()
        return bool(self._best_effort(lambda: self.client.exists(self.cancel_key)))

    def _best_effort(self, call: Callable[[], object]) -> object:
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            return call()
        except redis.RedisError as exc:
            if not isinstance(exc, REDIS_ERRORS) and not (isinstance(exc, redis.ResponseError) and is_transient(exc)):
                raise
            self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            log.warning(
                "redis unavailable mid-job (%s); events and cancel checks paused for %.0f s", exc, REDIS_RETRY_AFTER_S
            )
            return None
