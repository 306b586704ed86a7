"""The long-running worker: orchestration of its threads around the device.

Lifecycle (worker.state): STARTING (groups, this consumer's own pending entries, keepalive, the default model),
READY, DRAINING (a stop was asked: the running batch finishes, waiting entries go back to their lane), STOPPED.

While READY four threads share the work so that the device never waits for anything but the device:
- intake: the next owned entry (worker.queue.intake) -> its payload read (worker.payload) -> still ours?
  (worker.queue.leases) -> a run started (attempt counted, job lock taken: worker.queue.runs) -> prepared
  (validation, image fetched and decoded, resolution, cache check: worker.jobs) -> ready for the device
  (worker.ready); cache hits go straight to the finisher;
- device (this thread): the next batch of ready jobs (one job, or compatible jobs of one lane) -> generated;
- finisher: encode, upload and the terminal write (worker.endings -> worker.queue.outcomes);
- keepalive: every owned entry and every held job lock, until the worker has let them all go.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from npc_video_client.contract import ErrorCode, JobEnvelope, JobProcessingEvent
from npc_video_client.errors import JobError
from npc_video_client.names import LANES_BY_PRIORITY, StreamNames
from worker.affinity import Affinity
from worker.endings import Endings
from worker.failures import as_job_error
from worker.health import Health
from worker.jobs import JobRunner, PreparedJob, request_summary
from worker.logs import log_context
from worker.metrics import WorkerMetrics
from worker.payload import read_job
from worker.queue.events import EventWriter
from worker.queue.intake import Intake
from worker.queue.leases import Lease, Leases, Ownership
from worker.queue.outcomes import Outcomes, Retention
from worker.queue.reporting import RedisJobHooks
from worker.queue.runs import Announcement, Run, RunGate, RunRegistry, Verdict
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.ready import ReadyJob, ReadyQueue
from worker.retry import RetryPolicy
from worker.settings import Settings
from worker.shutdown import ImmediateShutdown, ShutdownFlag
from worker.state import StateMachine, WorkerState

log = logging.getLogger(__name__)
BUSY_RECHECK_S = (0.25, 0.5, 1.0, 2.0)  # a duplicate waits for the run holding its job, looking again this often
READY_POLL_S = 0.2  # the device loop looks at the stop flag (and beats) at least this often when idle
ATTEMPT_PLACEHOLDER = -987_654_321  # in a job:processing event until its run begins and the attempt is known
# Python hands the GIL to a waiting thread every switch interval (5 ms by default): the device thread, waking from a
# Redis reply between two jobs while the intake and finisher threads work, would wait that long each time.
SWITCH_INTERVAL_S = 0.0005
INTAKE_ERROR_PAUSE_S = 0.5


@dataclass
class Ready:
    """A prepared job waiting for the device."""

    run: Run
    prepared: PreparedJob
    hooks: RedisJobHooks


class Worker:
    def __init__(
        self,
        *,
        settings: Settings,
        runner: JobRunner,
        client: redis.Redis,
        consumer: str,
        shutdown: ShutdownFlag,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.client = client
        self.consumer = consumer
        self.shutdown = shutdown
        self.metrics = metrics
        self.names = StreamNames(settings.prefix)
        self.leases = Leases(client, self.names, consumer, settings.claim_idle_ms)
        self.affinity = Affinity(runner, settings.max_job_bytes)
        self.intake = Intake(
            self.leases,
            block_ms=settings.block_ms,
            lookahead=settings.affinity_lookahead,
            max_skips=settings.affinity_max_skips,
            prefer=self.affinity.prefers,
        )
        self.gate = RunGate(client, self.names, consumer, settings.claim_idle_ms, settings.result_ttl_s)
        self.outcomes = Outcomes(
            client,
            self.names,
            Retention(
                result_ttl_s=settings.result_ttl_s,
                events_maxlen=settings.events_maxlen,
                dead_maxlen=settings.dead_maxlen,
                completion_ttl_s=settings.completion_ttl_s,
                channel=settings.events_channel,
            ),
        )
        self.events = EventWriter(client, self.names, consumer, settings.events_maxlen, settings.events_channel)
        self.state = StateMachine(on_change=metrics.set_state)
        self.redis = RedisWaiter(
            shutdown, self.beat, self.leases.ensure_groups, on_recovered=self.intake.hold_take_overs
        )
        self.runs = RunRegistry()
        self.endings = Endings(
            events=self.events,
            outcomes=self.outcomes,
            redis=self.redis,
            leases=self.leases,
            runs=self.runs,
            metrics=metrics,
            policy=RetryPolicy(settings.max_attempts, settings.retry_backoff_ms),
        )
        self.health = Health(settings, self.state, runner, client, self.heartbeat_age_s)
        self.batch_limit = settings.batch_limit(runner.pool.device)
        self.ready = ReadyQueue(capacity=self.batch_limit)
        # Frames wait for encoding in memory: a few jobs' worth at most, so the device runs ahead of the finisher
        # without holding every video of a backlog.
        self._finishing = threading.BoundedSemaphore(max(2, self.batch_limit))
        self._finishing_capacity = max(2, self.batch_limit)
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish")
        self._announcer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="announce")
        self._heartbeat = time.monotonic()
        self._leases_released = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until asked to stop; 0 after a graceful drain, 1 after an immediate stop."""
        keepalive = threading.Thread(target=self._keepalive_loop, name="keepalive", daemon=True)
        intake = threading.Thread(target=self._intake_loop, name="intake", daemon=True)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            self.state.to(WorkerState.STARTING)
            if self._start(keepalive):
                self.state.to(WorkerState.READY)
                intake.start()
                self._device_loop()
            self.state.to(WorkerState.DRAINING)
            self._drain(intake)
            self.state.to(WorkerState.STOPPED)
            log.info("stopped after %d jobs", self.jobs_done)
            return 0
        except ImmediateShutdown:
            log.warning("stopping at once: entries in hand stay pending for another worker")
            self.state.to(WorkerState.DEFUNCT)
            return 1
        except BaseException:
            self.state.to(WorkerState.DEFUNCT)
            raise
        finally:
            self._leases_released.set()
            self._finisher.shutdown(wait=not self.shutdown.immediate, cancel_futures=True)
            self._announcer.shutdown(wait=False, cancel_futures=True)

    @property
    def jobs_done(self) -> int:
        return self.endings.jobs_done

    def _start(self, keepalive: threading.Thread) -> bool:
        """False when a stop was asked while starting (nothing is in hand then, or it is handed back)."""
        try:
            self.redis.call(self.leases.ensure_groups, stop_on_request=True)
            recovered = self.redis.call(self.leases.recover_own, stop_on_request=True)
        except StopWaiting:
            return False
        if recovered:
            log.info("recovered %d pending entries of consumer %s", len(recovered), self.consumer)
        keepalive.start()  # before the model loads: recovered entries must stay ours meanwhile
        self.runner.pool.get(self.runner.catalog.defaults.model)
        warmed = self.runner.warm_up()  # compiled models: every preset shape, before /readyz says ready
        if warmed:
            log.info("warmed up %s", ", ".join(warmed))
        log.info("worker %s ready on %s", self.consumer, ", ".join(self.names.lanes))
        return not self.shutdown.requested

    def _device_loop(self) -> None:
        wait_s = self.settings.batch_wait_ms / 1000
        while not self.shutdown.requested:
            self.beat()
            batch = self.ready.take(self.batch_limit, wait_s, timeout_s=READY_POLL_S)
            if batch:
                self._generate([job.payload for job in batch])

    def _drain(self, intake: threading.Thread) -> None:
        """Finish what runs; runs prepared but not started and every waiting entry go back to their lane."""
        if intake.is_alive():
            intake.join()
        for job in self.ready.drain():
            self._abandon(job.payload.run)
        self.leases.hand_back()
        self._wait_for_finishers()
        self.leases.hand_back()  # a retry scheduled by the last job's failure

    def beat(self) -> None:
        self._heartbeat = time.monotonic()

    def last_beat(self) -> float:
        return self._heartbeat

    def heartbeat_age_s(self) -> float:
        return time.monotonic() - self._heartbeat

    def healthz(self) -> tuple[bool, dict[str, object]]:
        return self.health.healthz()

    def readyz(self) -> tuple[bool, dict[str, object]]:
        return self.health.readyz()

    # -- intake: entries become prepared runs ---------------------------------------------------------------
    def _intake_loop(self) -> None:
        """Never ends on its own: an error here is logged and the next entry taken (the device loop waits)."""
        while not self.shutdown.requested:
            try:
                lease = self.redis.call(self.intake.next_lease, stop_on_request=True)
                if lease is not None:
                    self._take_in(lease)
            except (StopWaiting, ImmediateShutdown):
                return
            except Exception:
                log.exception("taking in the next entry failed; going on")
                time.sleep(INTAKE_ERROR_PAUSE_S)

    def _take_in(self, lease: Lease) -> None:
        read = read_job(lease.payload, f"unknown:{lease.lane.value}:{lease.entry_id}", self.settings.max_job_bytes)
        lease.job_id = read.job_id
        with log_context(job_id=read.job_id, lane=lease.lane.value):
            self.metrics.in_flight.inc()
            handed_on = False
            try:
                if read.error is not None or read.envelope is None:
                    error = read.error or JobError(ErrorCode.INVALID_PARAMS, "job cannot be read")
                    self.endings.end(lease, read.job_id, error, metadata=read.metadata, result_key=read.has_job_id)
                    return
                run = self._start_run(lease, read.job_id, read.envelope)
                if run is not None:
                    with log_context(attempt=run.attempt):
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

    def _start_run(self, lease: Lease, job_id: str, envelope: JobEnvelope) -> Run | None:
        """A started run, or None: the entry is not ours any more, the job already ended, or it runs elsewhere."""
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
            stored = self.redis.call(lambda: self.outcomes.stored_result(job_id))
            refreshed = self.runner.refresh_urls(stored) if stored is not None else None
            self.redis.call(lambda: self.outcomes.duplicate(lease, job_id, refreshed))
            self.metrics.duplicates.inc()
            self.leases.release(lease)
            return None
        if claim.verdict is Verdict.BUSY:
            lease.due = time.monotonic() + BUSY_RECHECK_S[min(lease.waits, len(BUSY_RECHECK_S) - 1)]
            lease.waits += 1
            lease.running = False
            log.info("job is running elsewhere (%s); looking again later", claim.detail)
            return None
        return Run(lease, job_id, token, metadata=envelope.metadata)

    def _announce(self, run: Run, hooks: RedisJobHooks, prepared: PreparedJob) -> int:
        """The run begins: its attempt is counted and its job:processing event written, in one round trip (the
        event only when the run is not one too many). Returns the attempt."""
        request = prepared.request
        event = self.events.stamp(
            JobProcessingEvent,
            job_id=run.job_id,
            attempt=ATTEMPT_PLACEHOLDER,
            model=request.model,
            preset=request.preset,
            metadata=run.metadata,
        )
        announce = Announcement.of(
            event.model_dump_json(),
            ATTEMPT_PLACEHOLDER,
            max_attempts=self.settings.max_attempts,
            maxlen=self.settings.events_maxlen,
            channel=self.settings.events_channel,
        )
        run.attempt = hooks.attempt = self.redis.call(lambda: self.gate.begin(run.job_id, announce))
        return run.attempt

    def _gave_up(self, attempt: int) -> JobError | None:
        """The error of a run one beyond max_attempts (every earlier run died with its worker), else None."""
        if not self.endings.policy.exhausted(attempt):
            return None
        return JobError(
            ErrorCode.INTERNAL_ERROR,
            f"gave up after {attempt - 1} runs started (a worker may have died on this job each time)",
        )

    def _prepare(self, run: Run, envelope: JobEnvelope) -> bool:
        """Prepare a started run for the device; True when it was handed on (to the device, or to the finisher
        for a cache hit), False when it ended or will be retried here."""
        self.runs.track(run)
        hooks = RedisJobHooks(
            self.events,
            self.client,
            self.names.cancel(run.job_id),
            run.job_id,
            run.attempt,
            progress_interval_ms=self.settings.progress_interval_ms,
            on_step=self._step,
            metadata=run.metadata,
        )
        prepared: PreparedJob | None = None
        try:
            prepared = self.runner.prepare(envelope, hooks)
            cached = self.runner.is_cached(prepared)
        except Exception as exc:
            run.attempt = self.redis.call(lambda: self.gate.begin(run.job_id))  # a failed run counts
            partial = request_summary(run.job_id, prepared.request, run.metadata) if prepared else None
            self.endings.failed(run, as_job_error(exc), partial)
            return False
        if cached:
            gave_up = self._gave_up(self._announce(run, hooks, prepared))
            if gave_up is None:
                self._hand_to_finisher(run, prepared, None)
                return True
            self.endings.end(
                run.lease,
                run.job_id,
                gave_up,
                run=run,
                partial=request_summary(run.job_id, prepared.request, run.metadata),
            )
            return False
        batch_key = None if run.lease.solo else self.runner.batch_key(prepared)
        job = ReadyJob(priority=run.lease.priority, batch_key=batch_key, payload=Ready(run, prepared, hooks))
        if self.ready.put(job, stopping=lambda: self.shutdown.requested):
            return True
        self._abandon(run)
        return False

    # -- device: ready jobs become frames ------------------------------------------------------------------
    def _generate(self, batch: list[Ready]) -> None:
        """Start the device at once: each run's begin (attempt, job:processing) goes to Redis alongside, and the
        run waits for it at its first step (hooks), so the device does not idle through a round trip."""
        begun = []
        for item in batch:
            context = contextvars.copy_context()
            begin = self._announcer.submit(context.run, self._announce, item.run, item.hooks, item.prepared)
            item.hooks.begin_with(begin, self._gave_up)
            begun.append(begin)
        jobs = [(item.prepared, item.hooks) for item in batch]
        try:
            outcomes: list[Any] = self.runner.generate_batch(jobs)
        except ImmediateShutdown:
            raise
        except Exception as exc:  # the model's load or its LoRAs failed: the same for every member
            outcomes = [exc] * len(batch)
        for begin in begun:
            begin.result()  # every attempt counted before its outcome is written (re-raises a second signal)
        immediate: BaseException | None = None
        for item, outcome in zip(batch, outcomes, strict=True):
            run = item.run
            with log_context(job_id=run.job_id, lane=run.lease.lane.value, attempt=run.attempt):
                if isinstance(outcome, ImmediateShutdown | KeyboardInterrupt):
                    immediate = outcome
                elif isinstance(outcome, BaseException):
                    partial = request_summary(run.job_id, item.prepared.request, run.metadata)
                    self.endings.failed(run, as_job_error(outcome), partial, batched=len(batch) > 1)
                    self.metrics.in_flight.dec()
                else:
                    self._hand_to_finisher(run, item.prepared, outcome)
        if immediate is not None:
            raise immediate

    def _step(self) -> None:
        self.beat()
        self.shutdown.check_immediate()

    def _abandon(self, run: Run) -> None:
        """A claimed run that never began (a stop while it waited for the device): its lock is let go and its
        entry waits to be handed back."""
        try:
            self.gate.release(run.job_id, run.token)
        except redis.RedisError as exc:
            log.warning("could not undo the start of job %s (%s); its lock expires on its own", run.job_id, exc)
        self.runs.untrack(run)
        run.lease.running = False
        self.metrics.in_flight.dec()

    # -- finisher: frames become a stored video and a terminal write ----------------------------------------
    def _hand_to_finisher(self, run: Run, prepared: PreparedJob, frames: Any) -> None:
        while not self._finishing.acquire(timeout=0.05):  # the finisher is a few jobs behind: wait for it
            self.shutdown.check_immediate()
            self.beat()
        context = contextvars.copy_context()
        self._finisher.submit(context.run, self._finish, run, prepared, frames)

    def _finish(self, run: Run, prepared: PreparedJob, frames: Any) -> None:
        try:
            try:
                result = self.runner.finish(prepared, frames)
            except Exception as exc:
                partial = request_summary(run.job_id, prepared.request, run.metadata)
                self.endings.failed(run, as_job_error(exc), partial)
                return
            self.endings.end(run.lease, run.job_id, None, run=run, result=result)
        except ImmediateShutdown:
            return
        except Exception:  # as in _take_in: log, keep the worker up, let the entry go (retried later)
            log.exception("finishing job %s failed; its entry is let go (retried after claim_idle_ms)", run.job_id)
            self.runs.forget(run.lease)
            self.leases.release(run.lease)
        finally:
            self.metrics.in_flight.dec()
            self._finishing.release()

    def _wait_for_finishers(self) -> None:
        """Until every handed-on job is finished (its terminal write waits for Redis, unless a second signal)."""
        taken = 0
        while taken < self._finishing_capacity:
            if self._finishing.acquire(timeout=0.05):
                taken += 1
                continue
            self.shutdown.check_immediate()
            self.beat()
        for _ in range(taken):
            self._finishing.release()

    # -- keepalive --------------------------------------------------------------------------------------------
    def _keepalive_loop(self) -> None:
        """Refresh every owned entry and every held job lock until the worker has let them all go, through a
        graceful drain too. It survives any error: a dead keepalive would let other workers steal live jobs."""
        interval = self.settings.claim_idle_ms / 3000
        while not self._leases_released.wait(interval):
            try:
                if self.shutdown.requested and not self.shutdown.immediate:
                    self.leases.hand_back()
                self.leases.keepalive()
                self.gate.renew(self.runs.locks())
            except redis.RedisError as exc:
                log.warning("keepalive failed (%s); trying again in %.1f s", exc, interval)
            except Exception:
                log.exception("keepalive failed; trying again in %.1f s", interval)


def watch_metrics(service: Worker) -> None:
    """Scrape-time readings: queue figures from Redis, heartbeat, model counts, device memory."""
    from worker.queue.depth import read_queue

    metrics = service.metrics
    metrics.watch_heartbeat(service.last_beat)
    metrics.watch_queue(lambda: read_queue(service.client, service.names), [lane.value for lane in LANES_BY_PRIORITY])
    metrics.watch_model_counts(service.runner.pool.counts)
    metrics.watch_device_memory(service.runner.pool.device_memory)
