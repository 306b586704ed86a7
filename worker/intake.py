"""Stage 1, intake: the next owned entry becomes a prepared job waiting for the device.

On its own thread, while the device runs earlier jobs: the next entry (worker.scheduling picks it; the lease
registry owns it) -> its payload read (worker.payload: never raises) -> a run claimed (worker.queue.runs: the job
lock, so one job never runs twice at once; a job that already ended is acknowledged as a duplicate) -> prepared
(worker.preparation: image fetched and decoded, request resolved, content key, cache checked) -> a `ReadyJob` for
the device (worker.scheduling), or, for a cached video, straight to the finisher. What fails here ends the job or
schedules its retry through worker.queue.endings; the attempt of a run counts when the run begins (on the device,
as a cache hit, or failing here).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from npc_video_client.contract import ErrorCode, JobEnvelope
from npc_video_client.errors import JobError
from npc_video_client.names import Lane
from worker.failures import as_job_error
from worker.finishing import Finishing, FinishStage
from worker.job import PreparedJob, request_summary
from worker.logs import log_context
from worker.metrics import WorkerMetrics
from worker.model_runner import ModelRunner
from worker.payload import read_job
from worker.preparation import Preparer
from worker.queue.endings import Endings
from worker.queue.leases import Lease, Leases, Ownership
from worker.queue.reporting import RedisJobHooks
from worker.queue.runs import Run, RunGate, RunRegistry, Verdict
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.scheduling import EntryPicker, ReadyQueue
from worker.settings import Settings
from worker.shutdown import ImmediateShutdown, ShutdownFlag

log = logging.getLogger(__name__)
ERROR_PAUSE_S = 0.5


@dataclass(eq=False)
class ReadyJob:
    """A prepared run waiting for the device (the item of the ready queue)."""

    run: Run
    prepared: PreparedJob
    hooks: RedisJobHooks
    batch_key: Hashable | None  # None: runs alone

    @property
    def priority(self) -> int:
        return self.run.lease.priority


class IntakeStage:
    def __init__(
        self,
        *,
        settings: Settings,
        leases: Leases,
        picker: EntryPicker,
        ready: ReadyQueue[ReadyJob],
        gate: RunGate,
        runs: RunRegistry,
        preparer: Preparer,
        models: ModelRunner,
        endings: Endings,
        finisher: FinishStage,
        redis: RedisWaiter,
        make_hooks: Callable[[Run], RedisJobHooks],
        shutdown: ShutdownFlag,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.leases = leases
        self.picker = picker
        self.ready = ready
        self.gate = gate
        self.runs = runs
        self.preparer = preparer
        self.models = models
        self.endings = endings
        self.finisher = finisher
        self.redis = redis
        self.make_hooks = make_hooks
        self.shutdown = shutdown
        self.metrics = metrics
        self.preparing: Lane | None = None  # the lane of the entry in hand (read by the device: company coming?)

    def company_coming(self, lane: Lane) -> bool:
        """Will a job of this lane be ready soon? One is in hand, or entries already read are due."""
        return self.preparing == lane or self.leases.due_waiting(lane) > 0

    def loop(self) -> None:
        """The intake thread. Never ends on its own: an error is logged and the next entry taken."""
        while not self.shutdown.requested:
            try:
                lease = self.redis.call(self.picker.next_lease, stop_on_request=True)
                if lease is not None:
                    self.preparing = lease.lane
                    try:
                        self.take_in(lease)
                    finally:
                        self.preparing = None
            except (StopWaiting, ImmediateShutdown):
                return
            except Exception:
                log.exception("taking in the next entry failed; going on")
                time.sleep(ERROR_PAUSE_S)

    def take_in(self, lease: Lease) -> None:
        read = read_job(lease.payload, f"unknown:{lease.lane.value}:{lease.entry_id}", self.settings.max_job_bytes)
        self.leases.identify(lease, read.job_id)
        with log_context(job_id=read.job_id, lane=lease.lane.value):
            self.metrics.in_flight.inc()
            handed_on = False
            try:
                if read.error is not None or read.envelope is None:
                    error = read.error or JobError(ErrorCode.INVALID_PARAMS, "job cannot be read")
                    self.endings.end(lease, read.job_id, error, metadata=read.metadata, result_key=read.has_job_id)
                    return
                run = self._claim_run(lease, read.job_id, read.envelope)
                if run is not None:
                    handed_on = self._prepare(run, read.envelope)
            except (ImmediateShutdown, StopWaiting):
                raise
            except Exception:  # a bookkeeping bug must not stop the worker: the entry is let go, and retried later
                log.exception("entry %s could not be handled; let go (retried after claim_idle_ms)", lease.describe())
                self.runs.forget(lease)
                self.leases.release(lease)
            finally:
                if not handed_on:
                    self.metrics.in_flight.dec()

    def _claim_run(self, lease: Lease, job_id: str, envelope: JobEnvelope) -> Run | None:
        """A claimed run, or None: the entry is not ours any more, the job already ended, or it runs elsewhere."""
        ownership = self.redis.call(lambda: self.leases.check(lease))
        if ownership in (Ownership.TAKEN, Ownership.DONE):
            log.info("entry %s is %s elsewhere; not running it here", lease.describe(), ownership.value)
            self.leases.release(lease)
            return None
        if ownership is Ownership.GONE:
            log.warning("entry %s is gone from Redis (data lost or trimmed); running it from memory", lease.describe())
        token = self.gate.new_token(lease.entry_id)
        claim = self.redis.call(lambda: self.gate.claim(job_id, token))
        if claim.verdict is Verdict.FINAL:
            log.info("job already ended (%s): acknowledging this duplicate entry", claim.detail)
            self.endings.duplicate(lease, job_id)
            return None
        if claim.verdict is Verdict.BUSY:
            delay_s = self.leases.wait_for_other_run(lease)
            log.info("job is running elsewhere (%s); looking again in %.2f s", claim.detail, delay_s)
            return None
        return Run(lease, job_id, token, metadata=envelope.metadata)

    def _prepare(self, run: Run, envelope: JobEnvelope) -> bool:
        """Prepare a claimed run for the device; True when it was handed on (to the device, or to the finisher for
        a cache hit), False when it ended or will be retried here."""
        self.runs.track(run)
        hooks = self.make_hooks(run)
        prepared: PreparedJob | None = None
        try:
            prepared = self.preparer.prepare(envelope, hooks)
            cached = self.preparer.is_cached(prepared)
        except Exception as exc:
            run.attempt = self.redis.call(lambda: self.gate.begin(run.job_id))  # a failed run counts
            partial = request_summary(run.job_id, prepared.request, run.metadata) if prepared else None
            self.endings.failed(run, as_job_error(exc), partial)
            return False
        if cached:
            request = prepared.request
            self.redis.call(lambda: self.gate.begin_run(run, request.model, request.preset, request.steps))
            if self.endings.gave_up(run, prepared):
                return False
            self.finisher.submit(Finishing(run, prepared, None))
            return True
        batch_key = None if run.lease.solo else self.models.batch_key(prepared)
        if self.ready.put(ReadyJob(run, prepared, hooks, batch_key), stopping=lambda: self.shutdown.requested):
            return True
        self.endings.abandon(run)
        return False
