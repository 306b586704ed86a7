"""Stage 3, the device: each batch of ready jobs runs on the model, and each job's outcome is handed on.

On the device thread (the service's main thread): the runs of a batch begin (their attempts counted and their
job:processing events written, on the `announce` executor, beside the device's start, so the device does not idle
through a Redis round trip: each run waits for its begin at its first step, and a run one too many stops there);
the model runner (worker.model_runner) generates every job's frames; frames go to the finisher (worker.finishing),
failures to endings (worker.queue.endings), retried alone when they failed in a batch.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor

from worker.failures import as_job_error
from worker.finishing import Finishing, FinishStage
from worker.group.lockstep import GroupFailure
from worker.intake import ReadyJob
from worker.job import Outcome, request_summary
from worker.logs import log_context
from worker.metrics import WorkerMetrics
from worker.model_runner import ModelRunner
from worker.queue.endings import Endings
from worker.queue.runs import RunGate
from worker.queue.waiting import RedisWaiter
from worker.shutdown import ImmediateShutdown


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
    ) -> None:
        self.models = models
        self.gate = gate
        self.redis = redis
        self.endings = endings
        self.finisher = finisher
        self.metrics = metrics
        self._announcer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="announce")

    def run(self, batch: list[ReadyJob]) -> None:
        begun: list[Future[int]] = []
        for job in batch:
            begin = self._announcer.submit(contextvars.copy_context().run, self._begin, job)
            job.hooks.begin_with(begin, self.endings.policy.gave_up)
            begun.append(begin)
        in_pipeline_call = True
        try:
            outcomes = self.models.generate_batch([(job.prepared, job.hooks) for job in batch])
        except ImmediateShutdown:
            raise
        except Exception as exc:  # the model's load or its LoRAs failed: the same for every member
            outcomes, in_pipeline_call = [exc] * len(batch), False
        for begin in begun:
            begin.result()  # every attempt counted before its outcome is written (re-raises a second signal)
        immediate: BaseException | None = None
        for job, outcome in zip(batch, outcomes, strict=True):
            stop = self._hand_on(job, outcome, batched=len(batch) > 1, in_pipeline_call=in_pipeline_call)
            immediate = immediate or stop
        if immediate is not None:
            raise immediate

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
        with log_context(job_id=run.job_id, lane=run.lease.lane.value, attempt=run.attempt, model=request.model):
            if isinstance(outcome, ImmediateShutdown | KeyboardInterrupt | GroupFailure):
                return outcome
            if isinstance(outcome, BaseException):
                partial = request_summary(run.job_id, request, run.metadata)
                self.endings.failed(
                    run, as_job_error(outcome, in_pipeline_call=in_pipeline_call), partial, batched=batched
                )
                self.metrics.in_flight.dec()
                return None
            self.finisher.submit(Finishing(run, job.prepared, outcome))
            return None

    def close(self) -> None:
        self._announcer.shutdown(wait=False, cancel_futures=True)
