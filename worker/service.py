"""The long-running worker: orchestration of leases, runs, the job runner and terminal writes.

Lifecycle (worker.state): STARTING (groups, this consumer's own pending entries, keepalive, storage check, the
default model), READY (the loop: next owned entry -> read its payload -> check it is still ours -> start a run
(attempt counter, job lock) -> prepare and generate on this thread -> encode, upload and the terminal write on
the finisher thread, overlapping the next job), DRAINING (a stop was asked: the running job finishes, waiting
entries go back to their lane), STOPPED. Every lease stays alive (keepalive thread) until the worker has
released it, through a graceful drain too.

Each step lives in its own module: worker.payload (untrusted bytes -> envelope), worker.queue.leases
(ownership), worker.queue.intake (what runs next), worker.queue.runs (attempts and the job lock),
worker.queue.outcomes (the one terminal write), worker.retry (the retry policy), worker.jobs (the job itself).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel

from models.resolution import choose_model
from npc_video_client.contract import (
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobResult,
    JobStatus,
)
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from npc_video_client.names import LANES_BY_PRIORITY, StreamNames
from worker.failures import as_job_error, failure_result
from worker.jobs import JobRunner, PreparedJob, request_summary
from worker.logs import log_context
from worker.metrics import WorkerMetrics
from worker.payload import read_job
from worker.queue.events import EventWriter
from worker.queue.intake import Intake
from worker.queue.leases import Lease, Leases, Ownership
from worker.queue.outcomes import Outcomes, Retention, dead_letter_error
from worker.queue.reporting import RedisJobHooks
from worker.queue.runs import RunGate, Verdict
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.retry import RetryPolicy
from worker.settings import Settings
from worker.shutdown import ImmediateShutdown, ShutdownFlag
from worker.state import StateMachine, WorkerState
from worker.storage import StorageConfigError

log = logging.getLogger(__name__)
ENTRY_MODEL_MEMORY = 256
BUSY_RECHECK_S = (0.25, 0.5, 1.0, 2.0)  # a duplicate waits for the run holding its job, looking again this often
STORAGE_RECHECK_S = 30.0


@dataclass
class Run:
    """One started run of a job: its lease, the job lock's token and the attempt number it counted."""

    lease: Lease
    job_id: str
    token: str
    attempt: int


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
        self.intake = Intake(
            self.leases,
            block_ms=settings.block_ms,
            lookahead=settings.affinity_lookahead,
            max_skips=settings.affinity_max_skips,
            prefer=self._uses_model_on_device,
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
        self.policy = RetryPolicy(settings.max_attempts, settings.retry_backoff_ms)
        self.state = StateMachine(on_change=metrics.set_state)
        self.redis = RedisWaiter(shutdown, self.beat, self.leases.ensure_groups)
        self.jobs_done = 0
        self._heartbeat = time.monotonic()
        self._runs: dict[int, Run] = {}  # by id(lease): runs whose job lock the keepalive renews
        self._runs_lock = threading.Lock()
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish")
        self._finishing: Future[None] | None = None
        self._leases_released = threading.Event()
        self._entry_models: OrderedDict[int, str | None] = OrderedDict()
        self._storage_checked = (0.0, True, "")

    # -- lifecycle ------------------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until asked to stop; 0 after a graceful drain, 1 after an immediate stop."""
        keepalive = threading.Thread(target=self._keepalive_loop, name="keepalive", daemon=True)
        try:
            self.state.to(WorkerState.STARTING)
            started = self._start(keepalive)
            if started:
                self.state.to(WorkerState.READY)
                self._loop()
            self.state.to(WorkerState.DRAINING)
            self._drain()
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

    def _start(self, keepalive: threading.Thread) -> bool:
        """False when a stop was asked while waiting for Redis at start (nothing is in hand then)."""
        try:
            self.redis.call(self.leases.ensure_groups, stop_on_request=True)
            recovered = self.redis.call(self.leases.recover_own, stop_on_request=True)
        except StopWaiting:
            return False
        if recovered:
            log.info("recovered %d pending entries of consumer %s", len(recovered), self.consumer)
        keepalive.start()  # before the model loads: recovered entries must stay ours meanwhile
        self.runner.pool.get(self.runner.catalog.defaults.model)
        log.info("worker %s ready on %s", self.consumer, ", ".join(self.names.lanes))
        return not self.shutdown.requested

    def _loop(self) -> None:
        while not self.shutdown.requested:
            self.beat()
            try:
                lease = self.redis.call(self.intake.next_lease, stop_on_request=True)
            except StopWaiting:
                return
            if lease is not None:
                self._handle(lease)

    def _drain(self) -> None:
        """Finish what runs; every waiting entry goes back to its lane (the keepalive thread starts on that as
        soon as the stop is asked, while the current job still runs)."""
        self.leases.hand_back()
        self._wait_for_finisher()
        self.leases.hand_back()  # a retry scheduled by the last job's failure

    def beat(self) -> None:
        self._heartbeat = time.monotonic()

    def last_beat(self) -> float:
        return self._heartbeat

    def heartbeat_age_s(self) -> float:
        return time.monotonic() - self._heartbeat

    # -- one entry --------------------------------------------------------------------------------------------
    def _handle(self, lease: Lease) -> None:
        read = read_job(lease.payload, f"unknown:{lease.lane.value}:{lease.entry_id}", self.settings.max_job_bytes)
        lease.job_id = read.job_id
        with log_context(job_id=read.job_id, lane=lease.lane.value):
            self.metrics.in_flight.inc()
            handed_off = False
            try:
                if read.error is not None or read.envelope is None:
                    error = read.error or JobError(ErrorCode.INVALID_PARAMS, "job cannot be read")
                    self._end(lease, read.job_id, error)
                else:
                    handed_off = self._run(lease, read.job_id, read.envelope)
            except (ImmediateShutdown, StopWaiting):
                raise
            except Exception:  # a bookkeeping bug must not stop the worker; the entry stays ours and pending
                log.exception("entry %s could not be handled; it stays pending", lease.describe())
                self._forget(lease)
            finally:
                if not handed_off:
                    self.metrics.in_flight.dec()

    def _run(self, lease: Lease, job_id: str, envelope: Any) -> bool:
        """Start a run and generate on this thread; True when the finisher thread took the job over."""
        ownership = self.redis.call(lambda: self.leases.check(lease))
        if ownership in (Ownership.TAKEN, Ownership.DONE):
            log.info("entry %s is %s elsewhere; not running it here", lease.describe(), ownership.value)
            self.leases.release(lease)
            return False
        if ownership is Ownership.GONE:
            log.warning("entry %s is gone from Redis (data lost or trimmed); running it from memory", lease.describe())
        token = self.gate.new_token(lease.entry_id)
        start = self.redis.call(lambda: self.gate.start(job_id, token))
        if start.verdict is Verdict.FINAL:
            log.info("job already ended (%s): acknowledging this duplicate entry", start.detail)
            stored = self.redis.call(lambda: self.outcomes.stored_result(job_id))
            refreshed = self.runner.refresh_urls(stored) if stored is not None else None
            self.redis.call(lambda: self.outcomes.duplicate(lease, job_id, refreshed))
            self.metrics.duplicates.inc()
            self.leases.release(lease)
            return False
        if start.verdict is Verdict.BUSY:
            lease.due = time.monotonic() + BUSY_RECHECK_S[min(lease.waits, len(BUSY_RECHECK_S) - 1)]
            lease.waits += 1
            lease.running = False
            log.info("job is running elsewhere (%s); looking again later", start.detail)
            return False
        run = Run(lease, job_id, token, start.attempt)
        with log_context(attempt=run.attempt):
            if self.policy.exhausted(run.attempt):
                gave_up = JobError(
                    ErrorCode.INTERNAL_ERROR,
                    f"gave up after {run.attempt - 1} runs started (a worker may have died on this job each time)",
                )
                self._end(lease, job_id, gave_up, run=run)
                return False
            return self._generate(run, envelope)

    def _generate(self, run: Run, envelope: Any) -> bool:
        self._track(run)
        hooks = RedisJobHooks(
            self.events,
            self.client,
            self.names.cancel(run.job_id),
            run.job_id,
            run.attempt,
            progress_interval_ms=self.settings.progress_interval_ms,
            on_step=self._step,
        )
        prepared: PreparedJob | None = None
        try:
            prepared = self.runner.prepare(envelope, hooks)
            frames = None if self.runner.is_cached(prepared) else self.runner.generate(prepared, hooks)
        except (ImmediateShutdown, StopWaiting):
            raise
        except Exception as exc:
            partial = request_summary(run.job_id, prepared.request) if prepared else None
            self._failed(run, as_job_error(exc), partial)
            return False
        self._wait_for_finisher()
        context = contextvars.copy_context()
        self._finishing = self._finisher.submit(context.run, self._finish, run, prepared, frames)
        return True

    def _finish(self, run: Run, prepared: PreparedJob, frames: Any) -> None:
        try:
            try:
                result = self.runner.finish(prepared, frames)
            except Exception as exc:
                self._failed(run, as_job_error(exc), request_summary(run.job_id, prepared.request))
                return
            self._end(run.lease, run.job_id, None, run=run, result=result)
        except ImmediateShutdown:
            return
        except Exception:  # as in _handle: log, keep the worker up, leave the entry pending
            log.exception("finishing job %s failed; its entry stays pending", run.job_id)
            self._forget(run.lease)
        finally:
            self.metrics.in_flight.dec()

    def _step(self) -> None:
        self.beat()
        self.shutdown.check_immediate()

    # -- outcomes -------------------------------------------------------------------------------------------
    def _failed(self, run: Run, error: JobError, partial: JobResult | None) -> None:
        """A failed attempt: run it again later when the retry policy says so, else end the job."""
        delay_s = self.policy.delay_s(error, run.attempt)
        if delay_s is None:
            self._end(run.lease, run.job_id, error, run=run, partial=partial)
            return
        event = self._failed_event(run.job_id, error, run.attempt, retryable=True)
        self.redis.call(lambda: self.outcomes.attempt_failed(run.job_id, event, run.token))
        self._untrack(run)
        run.lease.due = time.monotonic() + delay_s
        run.lease.running = False
        self.metrics.observe_retry(error.code)
        log.warning("attempt %d failed (%s); retrying in %.1f s", run.attempt, error.code.value, delay_s)

    def _end(
        self,
        lease: Lease,
        job_id: str,
        error: JobError | None,
        *,
        run: Run | None = None,
        partial: JobResult | None = None,
        result: JobResult | None = None,
    ) -> None:
        """The terminal write of a job: completed (`result`) or ended by `error`; counted once if it was the
        first final write of this job."""
        attempt = run.attempt if run else 0
        has_result_key = not job_id.startswith("unknown:")
        dead_error = None
        if result is not None:
            event: BaseModel = self.events.stamp(JobCompletedEvent, **result.model_dump(exclude={"status"}))
        else:
            assert error is not None
            result = failure_result(job_id, error, partial)
            if isinstance(error, JobCancelled):
                event = self.events.stamp(JobCancelledEvent, job_id=job_id)
            elif isinstance(error, DeadlineExceeded):
                event = self.events.stamp(JobExpiredEvent, job_id=job_id, deadline=error.deadline_ms)
            else:
                event = self._failed_event(job_id, error, attempt, retryable=False)
                dead_error = dead_letter_error(job_id, error.code.value, error.message, attempt)
        written = self.redis.call(
            lambda: self.outcomes.finish(
                lease,
                job_id,
                event,
                result=result if has_result_key else None,
                token=run.token if run else "",
                dead_error=dead_error,
            )
        )
        if run is not None:
            self._untrack(run)
        self.leases.release(lease)
        if not written:
            log.info("job had already ended elsewhere; this run's %s outcome was not written", result.status.value)
            self.metrics.duplicates.inc()
            return
        self.metrics.observe_final(result)
        self.jobs_done += 1
        if result.status == JobStatus.COMPLETED:
            log.info("job completed in %.0f ms (cache hit: %s)", result.timings.total_ms, result.cache_hit)
        else:
            log.info("job ended %s: %s", result.status.value, result.error_message)

    def _failed_event(self, job_id: str, error: JobError, attempt: int, *, retryable: bool) -> BaseModel:
        return self.events.stamp(
            JobFailedEvent,
            job_id=job_id,
            error_code=error.code,
            error_message=error.message,
            retryable=retryable,
            attempt=attempt,
        )

    # -- bookkeeping --------------------------------------------------------------------------------------
    def _track(self, run: Run) -> None:
        with self._runs_lock:
            self._runs[id(run.lease)] = run

    def _untrack(self, run: Run) -> None:
        with self._runs_lock:
            self._runs.pop(id(run.lease), None)

    def _forget(self, lease: Lease) -> None:
        """After a bookkeeping bug: stop renewing its job lock but keep the entry ours (it stays pending and is
        taken over or recovered later)."""
        with self._runs_lock:
            self._runs.pop(id(lease), None)

    def _wait_for_finisher(self) -> None:
        while self._finishing is not None and not self._finishing.done():
            self.shutdown.check_immediate()
            self.beat()
            time.sleep(0.005)
        if self._finishing is not None:
            self._finishing.result()
            self._finishing = None

    def _keepalive_loop(self) -> None:
        """Refresh every owned entry and every held job lock until the worker has released them all, through a
        graceful drain too. It survives any error: a dead keepalive would let other workers steal live jobs."""
        interval = self.settings.claim_idle_ms / 3000
        while not self._leases_released.wait(interval):
            try:
                if self.shutdown.requested and not self.shutdown.immediate:
                    self.leases.hand_back()
                self.leases.keepalive()
                with self._runs_lock:
                    locks = [(run.job_id, run.token) for run in self._runs.values()]
                self.gate.renew(locks)
            except redis.RedisError as exc:
                log.warning("keepalive failed (%s); trying again in %.1f s", exc, interval)
            except Exception:
                log.exception("keepalive failed; trying again in %.1f s", interval)

    # -- affinity -----------------------------------------------------------------------------------------
    def _uses_model_on_device(self, lease: Lease) -> bool:
        """Affinity: does this job run on a model that needs no load or swap now?"""
        model = self._model_of(lease)
        return model is not None and self.runner.pool.is_ready(model)

    def _model_of(self, lease: Lease) -> str | None:
        """The model a waiting entry will run on, remembered per lease: waiting entries are looked at on every
        pick, and their payloads (base images included) can be megabytes of JSON. Never raises."""
        key = id(lease)
        if key not in self._entry_models:
            read = read_job(lease.payload, "unknown", self.settings.max_job_bytes)
            try:
                model = choose_model(read.envelope.params, self.runner.catalog) if read.envelope else None
            except Exception:
                model = None
            self._entry_models[key] = model
            while len(self._entry_models) > ENTRY_MODEL_MEMORY:
                self._entry_models.popitem(last=False)
        return self._entry_models[key]

    # -- health -----------------------------------------------------------------------------------------------
    def healthz(self) -> tuple[bool, dict[str, object]]:
        """Alive: the loop shows progress (it beats while it waits for Redis too); Redis being down is not death."""
        age = self.heartbeat_age_s()
        state = self.state.current
        looping = state in (WorkerState.READY, WorkerState.DRAINING)
        alive = state is not WorkerState.DEFUNCT and (not looping or age < self.settings.heartbeat_timeout_s)
        return alive, {"state": state.value, "heartbeat_age_s": round(age, 1)}

    def readyz(self) -> tuple[bool, dict[str, object]]:
        try:
            redis_ok = bool(self.client.ping())
        except redis.RedisError:
            redis_ok = False
        model_loaded = self.runner.pool.is_loaded(self.runner.catalog.defaults.model)
        storage_ok, storage_detail = self._storage_ready()
        ready = self.state.is_(WorkerState.READY) and redis_ok and model_loaded and storage_ok
        detail: dict[str, object] = {
            "state": self.state.current.value,
            "redis": redis_ok,
            "model_loaded": model_loaded,
            "storage": storage_ok,
        }
        if storage_detail:
            detail["storage_error"] = storage_detail
        return ready, detail

    def _storage_ready(self) -> tuple[bool, str]:
        """The storage check, at most every STORAGE_RECHECK_S (a write and delete of a probe object)."""
        checked_at, ok, detail = self._storage_checked
        if time.monotonic() - checked_at >= STORAGE_RECHECK_S:
            try:
                self.runner.storage.check()
                ok, detail = True, ""
            except (StorageConfigError, JobError) as exc:
                ok, detail = False, str(exc)
            self._storage_checked = (time.monotonic(), ok, detail)
        return ok, detail


def watch_metrics(service: Worker) -> None:
    """Scrape-time readings: queue figures from Redis, heartbeat, model counts, device memory."""
    from worker.queue.depth import read_queue

    metrics = service.metrics
    metrics.watch_heartbeat(service.last_beat)
    metrics.watch_queue(lambda: read_queue(service.client, service.names), [lane.value for lane in LANES_BY_PRIORITY])
    metrics.watch_model_counts(service.runner.pool.counts)
    metrics.watch_device_memory(service.runner.pool.device_memory)
