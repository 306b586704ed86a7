"""Stage 3, the device: each batch of ready jobs runs on the model, and each job's outcome is handed on.

On the device thread (the service's main thread): the runs of a batch begin (their attempts counted and their
job:processing events written, on the `announce` executor, beside the device's start, so the device does not idle
through a Redis round trip: each run waits for its begin at its first step, and a run one too many stops there);
the model runner (worker.model_runner) generates every job's frames; frames go to the finisher (worker.finishing),
failures to endings (worker.queue.endings), retried alone when they failed in a batch.

A warm batch (worker.warm_runs) begins no run: it yields at its next step to a real job put in the ready queue
(`on_ready`), and a real job identical to one of its jobs joins that job instead of running (`join`): it finishes as
a cache hit once the warm job's video is stored, or goes back to the ready queue should the warm job not finish.
On a CPU device a warm batch also waits for the real jobs still finishing: their encodes and uploads would share
its cores (on a GPU it starts at once, beside them).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from npc_video_client.errors import JobCancelled
from worker.failures import as_job_error
from worker.finishing import Finishing, FinishStage
from worker.group.lockstep import GroupFailure
from worker.intake import ReadyJob
from worker.job import Outcome, request_summary
from worker.logs import log_context
from worker.metrics import WorkerMetrics
from worker.model_runner import ModelRunner
from worker.queue.endings import Endings
from worker.queue.reporting import RedisJobHooks
from worker.queue.runs import Run, RunGate
from worker.queue.waiting import RedisWaiter
from worker.shutdown import ImmediateShutdown
from worker.warm_runs import Joiner, Preempted, WarmHooks

log = logging.getLogger(__name__)
CORES_POLL_S = 0.01  # how often a waiting warm batch looks whether the real runs finished


class DeviceStage:
    def __init__(
        self,
        *,
        models: ModelRunner,
        gate: RunGate,
        redis: RedisWaiter,
        endings: Endings,
        finisher: FinishStage,
        metrics: WorkerMetrics,
        ready_again: Callable[[ReadyJob], None],
    ) -> None:
        self.models = models
        self.gate = gate
        self.redis = redis
        self.endings = endings
        self.finisher = finisher
        self.metrics = metrics
        self.ready_again = ready_again  # back into the ready queue: a joined job whose warm run did not finish
        self._announcer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="announce")
        self._warm: list[ReadyJob] = []  # the warm batch on the device now
        self._joined: dict[int, list[ReadyJob]] = {}  # real jobs riding along, by id() of the warm job they joined
        self._preempt = threading.Event()
        self._lock = threading.Lock()  # the intake thread joins and preempts while the device thread runs
        self._shares_cores = models.pool.device.split(":")[0] == "cpu"  # with the finisher's encodes

    # -- called from the intake thread -------------------------------------------------------------------------
    def on_ready(self, job: ReadyJob) -> None:
        """A job was put in the ready queue: a real one preempts the warm batch on the device."""
        if not job.run.lease.warm:
            with self._lock:
                if self._warm:
                    self._preempt.set()

    def preempts(self, run: Run) -> bool:
        """Is this warm run on the device, and a real job waiting for it to give way?"""
        with self._lock:
            return self._preempt.is_set() and any(job.run is run for job in self._warm)

    def warm_running(self) -> list[str]:
        """The job ids of the warm batch on the device now (empty when none runs)."""
        with self._lock:
            return [job.run.job_id for job in self._warm]

    def join(self, job: ReadyJob) -> bool:
        """Let a real job ride along with the identical warm job on the device; False when there is none."""
        with self._lock:
            if self._preempt.is_set():
                return False
            warm = next((w for w in self._warm if w.prepared.fingerprint == job.prepared.fingerprint), None)
            if warm is None:
                return False
            self._joined.setdefault(id(warm), []).append(job)
        self._begin_in_background(job)
        if not isinstance(warm.hooks, WarmHooks):
            raise TypeError(f"a warm job runs with WarmHooks, not {type(warm.hooks).__name__}")
        warm.hooks.join(Joiner(job.hooks, lambda: self._joiner_cancelled(job)))
        log.info("job %s joins the warm run of the same video", job.run.job_id)
        return True

    # -- the device thread ---------------------------------------------------------------------------------------
    def run(self, batch: list[ReadyJob]) -> None:
        warm = batch[0].run.lease.warm
        begun: list[Future[int]] = []
        if warm:
            with self._lock:
                self._warm = list(batch)
                self._preempt.clear()
        else:
            begun = [self._begin_in_background(job) for job in batch if job.run.attempt == 0]
        in_pipeline_call = True
        outcomes: list[Outcome]
        try:
            if warm and not self._cores_free():
                outcomes, in_pipeline_call = [Preempted() for _job in batch], False
            else:
                outcomes = self.models.generate_batch([(job.prepared, job.hooks) for job in batch])
        except ImmediateShutdown:
            raise
        except Exception as exc:  # the model's load or its LoRAs failed: the same for every member
            outcomes, in_pipeline_call = [exc] * len(batch), False
        finally:
            if warm:
                with self._lock:
                    self._warm = []
                    self._preempt.clear()
        for begin in begun:
            begin.result()  # every attempt counted before its outcome is written (re-raises a second signal)
        immediate: BaseException | None = None
        for job, outcome in zip(batch, outcomes, strict=True):
            stop = self._hand_on(job, outcome, batched=len(batch) > 1, in_pipeline_call=in_pipeline_call)
            immediate = immediate or stop
        if immediate is not None:
            raise immediate

    def _cores_free(self) -> bool:
        """A warm batch on a CPU device waits until no real run is finishing, or a real job joins it; False when a
        real job became ready meanwhile (the batch gives way before it began)."""
        while self._shares_cores and self.finisher.real_in_flight() > 0 and not self._has_riders():
            if self._preempt.wait(timeout=CORES_POLL_S):
                return False
        return True

    def _has_riders(self) -> bool:
        """A real job joined the waiting warm batch: it starts now, for that job."""
        with self._lock:
            return any(self._joined.get(id(job)) for job in self._warm)

    def _begin_in_background(self, job: ReadyJob) -> Future[int]:
        """A real job's run begins beside the device's start; its first step waits for it."""
        if not isinstance(job.hooks, RedisJobHooks):
            raise TypeError(f"a warm job's run does not begin (it has {type(job.hooks).__name__})")
        begin = self._announcer.submit(contextvars.copy_context().run, self._begin, job)
        job.hooks.begin_with(begin, self.endings.policy.gave_up)
        return begin

    def _begin(self, job: ReadyJob) -> int:
        """On the announce thread: the run's begin, waiting through a Redis outage or failover."""
        request = job.prepared.request
        return self.redis.call(lambda: self.gate.begin_run(job.run, request.model, request.preset, request.steps))

    def _hand_on(
        self, job: ReadyJob, outcome: Outcome, *, batched: bool, in_pipeline_call: bool
    ) -> BaseException | None:
        """Frames to the finisher, a failure to endings; a second signal or a broken worker group is returned, to be
        raised after the rest (the run then stays unfinished: its entry is retried)."""
        run = job.run
        request = job.prepared.request
        joined = self._take_joined(job)
        with log_context(job_id=run.job_id, lane=run.lease.lane.value, attempt=run.attempt, model=request.model):
            if isinstance(outcome, ImmediateShutdown | KeyboardInterrupt | GroupFailure):
                return outcome
            if not isinstance(outcome, BaseException):
                self.finisher.submit(Finishing(run, job.prepared, outcome))
                for rider in joined:  # after the warm job's video is stored: the finisher goes in order
                    self.finisher.submit(Finishing(rider.run, rider.prepared, None))
                return None
            for rider in joined:
                self.ready_again(rider)
            if isinstance(outcome, Preempted):
                self.endings.preempted(run)
                return None
            error = as_job_error(outcome, in_pipeline_call=in_pipeline_call)
            self.endings.failed(run, error, request_summary(run.job_id, request, run.metadata), batched=batched)
            self.metrics.in_flight.dec()
            return None

    def _take_joined(self, job: ReadyJob) -> list[ReadyJob]:
        with self._lock:
            return self._joined.pop(id(job), [])

    def _joiner_cancelled(self, job: ReadyJob) -> None:
        """A job that joined a warm run was cancelled on the way: it ends cancelled, the warm run goes on."""
        with self._lock:
            for riders in self._joined.values():
                if job in riders:
                    riders.remove(job)
        run = job.run
        self.endings.end(
            run.lease,
            run.job_id,
            JobCancelled(run.job_id),
            run=run,
            partial=request_summary(run.job_id, job.prepared.request, run.metadata),
        )
        self.metrics.in_flight.dec()

    def close(self) -> None:
        self._announcer.shutdown(wait=False, cancel_futures=True)
