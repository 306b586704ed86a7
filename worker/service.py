"""The long-running worker: consume jobs from the lane streams, run them, report, acknowledge.

Lifecycle (setup once, then many jobs): connect and create the groups, take back this consumer's own
pending entries, load the default model, then loop. Generation runs on the main thread; encoding and
upload of a job run on a finisher thread while the next job generates, so the device never waits on them.
Every exit path of a job goes through `_complete` or `_fail`, which write result, event and ack together
in one MULTI/EXEC transaction; the ack is never written without the result and the final event.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import redis
import torch
from npc_video_client.contract import (
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobProcessingEvent,
    JobProgressEvent,
    JobResult,
    JobStatus,
    QualityPreset,
    peek_job_id,
)
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from npc_video_client.names import LANES_BY_PRIORITY, StreamNames
from pydantic import BaseModel, ValidationError

from models.resolution import choose_model
from worker.failures import as_job_error, failure_result
from worker.jobs import UNKNOWN_JOB_ID, JobRunner, PreparedJob, decode_json, parse_envelope, request_summary
from worker.metrics import WorkerMetrics
from worker.queue.events import EventWriter, ProgressThrottle
from worker.queue.streams import Entry, JobStream
from worker.settings import Settings
from worker.shutdown import ImmediateShutdown, ShutdownFlag

log = logging.getLogger(__name__)
T = TypeVar("T")
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
HEALTHY_HEARTBEAT_S = 120.0
REDIS_RETRY_AFTER_S = 2.0
ENTRY_MODEL_MEMORY = 256


class RedisJobHooks:
    """Per-job hooks: processing/progress events, cancellation and shutdown checks at every step.

    A Redis outage during generation does not fail the job: these intermediate events and checks are
    skipped with a warning, and the final result waits for Redis to return (see Worker._transaction).
    """

    def __init__(self, service: Worker, entry: Entry, job_id: str) -> None:
        self.service = service
        self.entry = entry
        self.job_id = job_id
        self.throttle = ProgressThrottle(service.settings.progress_interval_ms)
        self._redis_down_until = 0.0

    def processing(self, model: str, preset: QualityPreset) -> None:
        events = self.service.events
        self._best_effort(
            lambda: events.emit(
                events.stamp(
                    JobProcessingEvent, job_id=self.job_id, attempt=self.entry.attempt, model=model, preset=preset
                )
            )
        )

    def progress(self, step: int, total_steps: int) -> None:
        self.service.beat()
        if self.throttle.due(step, total_steps):
            events = self.service.events
            self._best_effort(
                lambda: events.emit(
                    events.stamp(
                        JobProgressEvent,
                        job_id=self.job_id,
                        step=step,
                        total_steps=total_steps,
                        progress=round(step / total_steps, 4),
                    )
                )
            )

    def cancel_requested(self) -> bool:
        self.service.shutdown.check_immediate()
        cancel_key = self.service.names.cancel(self.job_id)
        return bool(self._best_effort(lambda: self.service.client.exists(cancel_key)))

    def _best_effort(self, call: Callable[[], object]) -> object:
        """Run a Redis call; after a failure, skip them for a while so an outage cannot stall every step."""
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            return call()
        except REDIS_ERRORS as exc:
            self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_S
            log.warning(
                "job %s: redis unavailable mid-job (%s); events and cancel checks paused for %.0f s",
                self.job_id,
                exc,
                REDIS_RETRY_AFTER_S,
            )
            return None


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
        self.stream = JobStream(
            client,
            self.names,
            consumer,
            settings.claim_idle_ms,
            settings.block_ms,
            prefer=self._uses_model_on_device,
            lookahead=settings.affinity_lookahead,
            max_skips=settings.affinity_max_skips,
        )
        self.events = EventWriter(client, self.names, consumer, settings.events_maxlen, settings.events_channel)
        self.ready = False
        self.jobs_done = 0
        self._heartbeat = time.monotonic()
        self._in_flight: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish")
        self._finishing: Future[None] | None = None
        self._entry_models: OrderedDict[str, str | None] = OrderedDict()

    # -- lifecycle ------------------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until asked to stop; 0 after a graceful drain, 1 after an immediate stop."""
        keepalive = threading.Thread(target=self._keepalive_loop, name="keepalive", daemon=True)
        try:
            self._setup()
            keepalive.start()
            while not self.shutdown.requested:
                self.beat()
                entry = self._with_reconnect(self.stream.next_entry)
                if entry is not None:
                    self._handle(entry)
            self._wait_for_finisher()
            log.info("stopped after %d jobs", self.jobs_done)
            return 0
        except ImmediateShutdown:
            log.warning("stopping at once: the current entry stays pending for another worker")
            return 1
        finally:
            self.shutdown.stopping.set()
            self._finisher.shutdown(wait=not self.shutdown.immediate, cancel_futures=True)

    def _setup(self) -> None:
        self._with_reconnect(self.stream.ensure_groups)
        recovered = self._with_reconnect(self.stream.recover_own_pending)
        if recovered:
            log.info("recovered %d pending entries of consumer %s", recovered, self.consumer)
        self.runner.pool.get(self.runner.catalog.defaults.model)
        self.ready = True
        log.info("worker %s ready on %s", self.consumer, ", ".join(self.names.lanes))

    def _uses_model_on_device(self, entry_id: str, payload: bytes | None) -> bool:
        """Affinity: does this job run on a model that needs no load or swap now?"""
        model = self._model_of(entry_id, payload)
        return model is not None and self.runner.pool.is_ready(model)

    def _model_of(self, entry_id: str, payload: bytes | None) -> str | None:
        """The model a pending entry will run on, remembered by entry id: held entries are looked at on
        every pick, and their payloads (base images included) can be megabytes of JSON."""
        if entry_id not in self._entry_models:
            try:
                self._entry_models[entry_id] = choose_model(parse_envelope(payload).params, self.runner.catalog)
            except JobError:
                self._entry_models[entry_id] = None
            while len(self._entry_models) > ENTRY_MODEL_MEMORY:
                self._entry_models.popitem(last=False)
        return self._entry_models[entry_id]

    def beat(self) -> None:
        self._heartbeat = time.monotonic()

    def heartbeat_age_s(self) -> float:
        return time.monotonic() - self._heartbeat

    # -- one entry --------------------------------------------------------------------------------------------
    def _handle(self, entry: Entry) -> None:
        with self._lock:
            self._in_flight[entry.entry_id] = entry
        self.metrics.in_flight.inc()
        handed_off = False
        try:
            handed_off = self._run(entry)
        except Exception:  # a bug in the bookkeeping must not stop the worker; the entry stays pending
            log.exception("entry %s of %s could not be handled; it stays pending", entry.entry_id, entry.stream)
        finally:
            if not handed_off:
                self._release(entry)

    def _release(self, entry: Entry) -> None:
        with self._lock:
            self._in_flight.pop(entry.entry_id, None)
        self.metrics.in_flight.dec()

    def _run(self, entry: Entry) -> bool:
        """Generate on this thread; returns True when the finisher thread took over the entry."""
        job_id = f"{UNKNOWN_JOB_ID}:{entry.entry_id}"
        try:
            if entry.payload is None:
                raise JobError(ErrorCode.INVALID_PARAMS, "stream entry has no field 'job'")
            document = decode_json(entry.payload)
            job_id = peek_job_id(document) or job_id
            envelope = parse_envelope(document)
        except JobError as invalid:
            self._fail(entry, job_id, invalid, None)
            return False
        if self._already_completed(entry, job_id):
            return False
        if entry.attempt > self.settings.max_attempts:
            gave_up = JobError(
                ErrorCode.INTERNAL_ERROR,
                f"gave up after {entry.attempt - 1} deliveries (a worker may have died on this job)",
            )
            self._fail(entry, job_id, gave_up, None)
            return False
        hooks = RedisJobHooks(self, entry, job_id)
        prepared: PreparedJob | None = None
        try:
            prepared = self.runner.prepare(envelope, hooks)
            frames = None if self.runner.is_cached(prepared) else self.runner.generate(prepared, hooks)
        except Exception as exc:
            partial = request_summary(job_id, prepared.request) if prepared else None
            self._fail(entry, job_id, as_job_error(exc), partial)
            return False
        self._wait_for_finisher()
        self._finishing = self._finisher.submit(self._finish, entry, prepared, frames)
        return True

    def _finish(self, entry: Entry, prepared: PreparedJob, frames: Any) -> None:
        try:
            try:
                result = self.runner.finish(prepared, frames)
            except Exception as exc:
                self._fail(
                    entry, prepared.job_id, as_job_error(exc), request_summary(prepared.job_id, prepared.request)
                )
                return
            self._complete(entry, result)
        except Exception:  # as in _handle: log, keep the worker up, leave the entry pending
            log.exception("finishing job %s failed; its entry stays pending", prepared.job_id)
        finally:
            self._release(entry)

    def _wait_for_finisher(self) -> None:
        while self._finishing is not None and not self._finishing.done():
            self.shutdown.check_immediate()
            time.sleep(0.01)
        if self._finishing is not None:
            self._finishing.result()
            self._finishing = None

    # -- outcomes (each writes result, event and ack in one transaction) ---------------------------------------
    def _already_completed(self, entry: Entry, job_id: str) -> bool:
        stored = self._with_reconnect(lambda: self.client.get(self.names.result(job_id)))
        if stored is None:
            return False
        try:
            result = JobResult.model_validate_json(stored)
        except ValidationError:
            log.warning("stored result of job %s is not a valid result; running the job again", job_id)
            return False
        if result.status != JobStatus.COMPLETED:
            return False
        log.info("job %s already completed: re-emitting its result, no second generation", job_id)
        self._transaction(lambda pipe: self._write_completed(pipe, entry, result, store=False))
        self.metrics.jobs.labels(outcome="duplicate").inc()
        return True

    def _write_completed(self, pipe: Any, entry: Entry, result: JobResult, *, store: bool) -> None:
        if store:
            pipe.set(self.names.result(result.job_id), result.model_dump_json(), ex=self.settings.result_ttl_s)
        self.events.add(pipe, self.events.stamp(JobCompletedEvent, **result.model_dump(exclude={"status"})))
        self.stream.ack(pipe, entry)

    def _complete(self, entry: Entry, result: JobResult) -> None:
        self._transaction(lambda pipe: self._write_completed(pipe, entry, result, store=True))
        self.metrics.observe_result(result)
        self.jobs_done += 1
        log.info(
            "job %s completed in %.0f ms (cache hit: %s)", result.job_id, result.timings.total_ms, result.cache_hit
        )

    def _fail(self, entry: Entry, job_id: str, error: JobError, partial: JobResult | None) -> None:
        if self._should_retry(entry, error):
            delay_s = self.settings.retry_backoff_ms / 1000 * 2 ** (entry.attempt - 1)
            self.events.emit(self._failed_event(job_id, error, entry, retryable=True))
            self.stream.retry_later(entry, delay_s)
            self.metrics.jobs.labels(outcome="retried").inc()
            log.warning("job %s attempt %d failed (%s); retrying in %.1f s", job_id, entry.attempt, error.code, delay_s)
            return
        result = failure_result(job_id, error, partial)

        def write(pipe: Any) -> None:
            if not job_id.startswith(f"{UNKNOWN_JOB_ID}:"):
                pipe.set(self.names.result(job_id), result.model_dump_json(), ex=self.settings.result_ttl_s)
            if isinstance(error, JobCancelled):
                self.events.add(pipe, self.events.stamp(JobCancelledEvent, job_id=job_id))
                pipe.delete(self.names.cancel(job_id))
            elif isinstance(error, DeadlineExceeded):
                self.events.add(pipe, self.events.stamp(JobExpiredEvent, job_id=job_id, deadline=error.deadline_ms))
            else:
                self.events.add(pipe, self._failed_event(job_id, error, entry, retryable=False))
                self.stream.dead_letter(pipe, entry, error_json(error, job_id, entry.attempt))
            self.stream.ack(pipe, entry)

        self._transaction(write)
        self.metrics.observe_result(result)
        if result.status == JobStatus.FAILED:
            self.metrics.jobs.labels(outcome="dead").inc()
        self.jobs_done += 1
        log.info("job %s ended %s: %s", job_id, result.status.value, error.message)

    def _failed_event(self, job_id: str, error: JobError, entry: Entry, *, retryable: bool) -> BaseModel:
        return self.events.stamp(
            JobFailedEvent,
            job_id=job_id,
            error_code=error.code,
            error_message=error.message,
            retryable=retryable,
            attempt=entry.attempt,
        )

    def _should_retry(self, entry: Entry, error: JobError) -> bool:
        if not error.retryable or entry.attempt >= self.settings.max_attempts:
            return False
        return not (error.code == ErrorCode.OUT_OF_MEMORY and entry.attempt >= 2)  # OOM: one retry at most

    # -- Redis plumbing ---------------------------------------------------------------------------------------
    def _transaction(self, write: Callable[[Any], object]) -> None:
        def run() -> None:
            pipe = self.client.pipeline(transaction=True)
            write(pipe)
            pipe.execute()

        self._with_reconnect(run)

    def _with_reconnect(self, call: Callable[[], T]) -> T:
        """Retry a Redis call through outages and restarts (recreating groups lost with the data)."""
        delay = 0.2
        while True:
            try:
                return call()
            except REDIS_ERRORS as exc:
                log.warning("redis unavailable (%s); retrying in %.1f s", exc, delay)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group missing (redis lost its data?); recreating it")
                self.stream.ensure_groups()
                continue
            if self.shutdown.immediate:
                raise ImmediateShutdown
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _keepalive_loop(self) -> None:
        interval = self.settings.claim_idle_ms / 3000
        while not self.shutdown.stopping.wait(interval):
            with self._lock:
                entries = list(self._in_flight.values())
            entries += self.stream.held_entries()
            try:
                self.stream.keepalive(entries)
            except REDIS_ERRORS as exc:
                log.warning("keepalive failed: %s", exc)

    # -- health -----------------------------------------------------------------------------------------------
    def healthz(self) -> tuple[bool, dict[str, object]]:
        age = self.heartbeat_age_s()
        return (not self.ready or age < HEALTHY_HEARTBEAT_S), {"heartbeat_age_s": round(age, 1), "ready": self.ready}

    def readyz(self) -> tuple[bool, dict[str, object]]:
        try:
            redis_ok = bool(self.client.ping())
        except REDIS_ERRORS:
            redis_ok = False
        model_loaded = self.runner.pool.is_loaded(self.runner.catalog.defaults.model)
        return (self.ready and redis_ok and model_loaded), {"redis": redis_ok, "model_loaded": model_loaded}

    def queue_depth(self, lane_stream: str) -> float:
        """Entries not yet delivered to the group (lag) plus those delivered but not acknowledged."""
        for group in self.client.xinfo_groups(lane_stream):
            if group["name"] in (b"npc-workers", "npc-workers"):
                return float((group.get("lag") or 0) + (group.get("pending") or 0))
        return 0.0


def error_json(error: JobError, job_id: str, attempt: int) -> str:
    return json.dumps(
        {"job_id": job_id, "error_code": error.code.value, "error_message": error.message, "attempt": attempt}
    )


def watch_metrics(service: Worker) -> None:
    for lane in LANES_BY_PRIORITY:
        service.metrics.watch_queue(lane.value, _depth_reader(service, service.names.lane(lane)))
    service.metrics.watch_residency(lambda: dict(service.runner.pool.residency.stats))
    service.metrics.watch_device_memory(
        lambda: float(torch.cuda.memory_allocated()) if torch.cuda.is_available() else 0.0,
        lambda: float(torch.cuda.memory_reserved()) if torch.cuda.is_available() else 0.0,
    )


def _depth_reader(service: Worker, stream: str) -> Callable[[], float]:
    def read() -> float:
        try:
            return service.queue_depth(stream)
        except (redis.RedisError, OSError):
            return float("nan")

    return read
