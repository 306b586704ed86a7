"""What a running job tells Redis and asks of it at every denoising step: progress events and state, cancellation,
and the live previews a job asked for (encoded and written on the `preview` thread, worker.previews).

A Redis outage during generation does not fail the job: these intermediate events and checks are skipped with a
warning (and not tried again for a short while, so an outage cannot stall every step); the terminal write waits
for Redis to come back instead.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future

import numpy as np
import redis

from npc_video_client.contract import JobPreviewEvent, JobProgressEvent
from npc_video_client.errors import JobError
from worker.previews import PreviewThrottle, as_base64, encode_webp
from worker.queue.events import EventWriter, ProgressThrottle
from worker.queue.job_state import JobStates, Progress
from worker.queue.runs import Run
from worker.queue.waiting import is_transient

log = logging.getLogger(__name__)
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
REDIS_RETRY_AFTER_S = 2.0


class BestEffort:
    """Mid-job Redis calls that an outage must not fail: skipped with a warning, and not tried again for
    REDIS_RETRY_AFTER_S, so an outage cannot stall every step."""

    def __init__(self) -> None:
        self._down_until = 0.0

    def __call__(self, call: Callable[[], object]) -> object:
        if time.monotonic() < self._down_until:
            return None
        try:
            return call()
        except redis.RedisError as exc:
            if not isinstance(exc, REDIS_ERRORS) and not (isinstance(exc, redis.ResponseError) and is_transient(exc)):
                raise
            self._down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            log.warning(
                "redis unavailable mid-job (%s); events and cancel checks paused for %.0f s", exc, REDIS_RETRY_AFTER_S
            )
            return None


class CancelFlag:
    """Is the job's cancel key set? Read at every step; during a Redis outage it reads as not set."""

    def __init__(self, client: redis.Redis, key: str, best_effort: BestEffort) -> None:
        self.client = client
        self.key = key
        self.best_effort = best_effort

    def is_set(self) -> bool:
        return bool(self.best_effort(lambda: self.client.exists(self.key)))


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
        preview_interval_ms: int,
        previews: Executor,
        preview_spent: Callable[[float], None],
    ) -> None:
        self.events = events
        self.states = states
        self.run = run
        self.throttle = ProgressThrottle(progress_interval_ms)
        self.on_step = on_step
        self.preview_throttle = PreviewThrottle(preview_interval_ms)
        self.previews = previews
        self.preview_spent = preview_spent  # the CPU seconds of each preview, to /metrics
        self._best_effort = BestEffort()
        self.cancel_flag = CancelFlag(client, cancel_key, self._best_effort)
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

    def preview_due(self, step: int, total_steps: int) -> bool:
        return self.preview_throttle.due(step)

    def preview(self, step: int, total_steps: int, frames: np.ndarray, fps: float) -> None:
        """Encode and write on the preview thread: the device goes on at once."""
        run = self.run

        def send() -> None:
            started = time.thread_time()
            try:
                event = self.events.stamp(
                    JobPreviewEvent,
                    job_id=run.job_id,
                    step=step,
                    total_steps=total_steps,
                    data=as_base64(encode_webp(frames, fps)),
                    width=int(frames.shape[2]),
                    height=int(frames.shape[1]),
                    frames=int(frames.shape[0]),
                    fps=fps,
                    metadata=run.metadata,
                )
                self._best_effort(lambda: self.events.emit(event))
            except Exception:  # a preview is a nicety: its failure is logged, the job goes on
                log.exception("the preview of step %d was not sent", step)
            finally:
                cpu_s = time.thread_time() - started
                self.preview_throttle.encoded(cpu_s)
                self.preview_spent(cpu_s)

        self.previews.submit(contextvars.copy_context().run, send)

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
        return self.cancel_flag.is_set()
