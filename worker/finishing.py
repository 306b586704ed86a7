"""Stage 4, finishing: a generated job's frames become a stored video and its terminal write, behind the device.

On the `finish` executor (one thread), so encoding and uploads never hold the device: the frames are encoded and
stored (worker.outputs; a cache hit has no frames and stores nothing; a warm job's video goes into the warm cache,
worker.warm_cache), and the completed result goes to its terminal write (worker.queue.endings). The device may run
ahead by a few jobs at most: their frames wait here in memory, bounded by `capacity`, and the device waits for room
beyond that.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from worker.failures import as_job_error
from worker.job import Frames, PreparedJob, request_summary
from worker.metrics import WorkerMetrics
from worker.outputs import Outputs
from worker.queue.endings import Endings
from worker.queue.leases import Leases
from worker.queue.runs import Run, RunRegistry
from worker.queue.waiting import RedisWaiter
from worker.shutdown import ImmediateShutdown, ShutdownFlag
from worker.warm_cache import WarmCache

log = logging.getLogger(__name__)
ROOM_POLL_S = 0.05


@dataclass(frozen=True)
class Finishing:
    """A run whose device work is done: its frames (None: a cache hit, nothing to encode)."""

    run: Run
    prepared: PreparedJob
    frames: Frames | None


class FinishStage:
    def __init__(
        self,
        *,
        outputs: Outputs,
        endings: Endings,
        warm: WarmCache,
        redis: RedisWaiter,
        leases: Leases,
        runs: RunRegistry,
        metrics: WorkerMetrics,
        shutdown: ShutdownFlag,
        beat: Callable[[], None],
        capacity: int,
    ) -> None:
        self.outputs = outputs
        self.endings = endings
        self.warm = warm
        self.redis = redis
        self.leases = leases
        self.runs = runs
        self.metrics = metrics
        self.shutdown = shutdown
        self.beat = beat
        self.capacity = capacity
        self._room = threading.BoundedSemaphore(capacity)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish")
        self._real = 0  # real runs handed on and not finished yet
        self._real_lock = threading.Lock()

    def submit(self, item: Finishing) -> None:
        """Hand a run on, once there is room (the caller beats while it waits; a second signal stops it)."""
        while not self._room.acquire(timeout=ROOM_POLL_S):
            self.shutdown.check_immediate()
            self.beat()
        if not item.run.lease.warm:
            with self._real_lock:
                self._real += 1
        self._executor.submit(contextvars.copy_context().run, self._finish, item)

    def real_in_flight(self) -> int:
        """Real runs handed on whose encode, upload and terminal write are not done yet."""
        with self._real_lock:
            return self._real

    def _finish(self, item: Finishing) -> None:
        run, prepared = item.run, item.prepared
        try:
            try:
                result = self.outputs.store(prepared, item.frames)
                if run.lease.warm:
                    self._into_warm_cache(run, prepared, made=item.frames is not None)
            except Exception as exc:
                partial = request_summary(run.job_id, prepared.request, run.metadata)
                self.endings.failed(run, as_job_error(exc), partial)
                return
            self.endings.end(run.lease, run.job_id, None, run=run, result=result)
        except ImmediateShutdown:
            return
        except Exception:  # a bookkeeping bug must not stop the worker: the entry is let go, and retried later
            log.exception("finishing job %s failed; its entry is let go (retried after claim_idle_ms)", run.job_id)
            self.runs.forget(run.lease)
            self.leases.release(run.lease)
        finally:
            if not run.lease.warm:
                with self._real_lock:
                    self._real -= 1
            self.metrics.in_flight.dec()
            self._room.release()

    def _into_warm_cache(self, run: Run, prepared: PreparedJob, *, made: bool) -> None:
        """A warm job's video, made now or stored already, is ready for the identical real job."""
        if made:
            self.redis.call(lambda: self.warm.add(run.job_id, prepared.video_key, prepared.stored_bytes))
        else:
            self.redis.call(lambda: self.warm.already_there(run.job_id, prepared.video_key))

    def wait_idle(self) -> None:
        """Until every run handed on is finished (its terminal write waits for Redis, unless a second signal)."""
        taken = 0
        while taken < self.capacity:
            if self._room.acquire(timeout=ROOM_POLL_S):
                taken += 1
                continue
            self.shutdown.check_immediate()
            self.beat()
        for _ in range(taken):
            self._room.release()

    def close(self) -> None:
        self._executor.shutdown(wait=not self.shutdown.immediate, cancel_futures=True)
