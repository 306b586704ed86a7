"""The long-running worker: it starts and stops the threads of a job's stages and passes typed items between them.

Read a job's life in stage order: worker.intake (1: entry -> payload -> claimed run -> prepared job) ->
worker.scheduling (2: which entry next, which ready jobs run together) -> worker.device with worker.model_runner
(3: frames) -> worker.finishing with worker.outputs (4: MP4 stored, result) -> worker.queue.endings (5: the
terminal write, or a retry). docs/architecture.md draws it.

Lifecycle (worker.state): STARTING (groups, this consumer's own pending entries, keepalive, the default model),
READY, DRAINING (a stop was asked: the running batch finishes, waiting entries go back to their lane), STOPPED.

Threads, and what each owns (the lease registry, worker.queue.leases, owns every lease's state; threads ask it):
- device (the thread that calls `serve`): takes batches from the ready queue and runs them on the model; owns the
  model pool, the pipelines and the conditioning cache;
- intake: picks the next entry, reads, claims and prepares it, puts it in the ready queue (or ends it);
- keepalive: refreshes every owned entry and held job lock; hands waiting entries back during a drain;
- finish (an executor of one thread): encodes, stores and writes the terminal write of each generated job;
- announce (an executor of one thread): begins each run (attempt counted, job:processing) beside the device;
- preview (an executor of one thread): encodes and writes the live previews a job asked for;
- batch members (pipelines.batching): one short-lived thread per job of a batch, for its pipeline call;
- HTTP (worker.http, started by `npc-worker serve`): /healthz, /readyz, /metrics;
- DNS (worker.fetch.http): a short-lived thread per base-image host lookup, abandoned at its deadline.

In a worker group (worker.group) this is the leader: the device thread also runs each call in lockstep with the
followers (worker.model_runner), pings them while idle and dismisses them at the end; a broken group ends the
worker with 1 (its entries stay pending for the restarted group).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from npc_video_client.names import LANES_BY_PRIORITY, StreamNames
from worker.device import DeviceStage
from worker.finishing import FinishStage
from worker.group.lockstep import Channel, Dismiss, GroupFailure
from worker.group.membership import join_with
from worker.health import Health
from worker.intake import IntakeStage, ReadyJob
from worker.metrics import WorkerMetrics
from worker.queue.connection import open_redis
from worker.queue.endings import Endings
from worker.queue.events import EventWriter
from worker.queue.job_state import JobStates
from worker.queue.keepalive import Keepalive
from worker.queue.leases import Leases
from worker.queue.outcomes import Outcomes, Retention
from worker.queue.reporting import BestEffort, CancelFlag, RedisJobHooks
from worker.queue.retry import RetryPolicy
from worker.queue.runs import Run, RunGate, RunRegistry
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.runtime import Runtime, build_info, build_runtime, consumer_name
from worker.scheduling import Affinity, EntryPicker, ReadyQueue
from worker.settings import Settings
from worker.shutdown import ImmediateShutdown, ShutdownFlag
from worker.state import StateMachine, WorkerState
from worker.warm_cache import WarmCache
from worker.warm_runs import WarmHooks

log = logging.getLogger(__name__)
READY_POLL_S = 0.2  # the device loop looks at the stop flag (and beats) at least this often when idle
# Python hands the GIL to a waiting thread every switch interval (5 ms by default): the device thread, waking from a
# Redis reply between two jobs while the intake and finisher threads work, would wait that long each time.
SWITCH_INTERVAL_S = 0.0005


class Worker:
    def __init__(
        self,
        *,
        settings: Settings,
        runtime: Runtime,
        client: redis.Redis,
        consumer: str,
        shutdown: ShutdownFlag,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.client = client
        self.consumer = consumer
        self.shutdown = shutdown
        self.metrics = metrics
        self.names = StreamNames(settings.prefix)
        self.state = StateMachine(on_change=metrics.set_state)
        self.health = Health(settings, self.state, runtime, client, self.heartbeat_age_s)
        self._heartbeat = time.monotonic()

        # the queue's state and its Redis operations
        self.leases = Leases(client, self.names, consumer, settings.claim_idle_ms)
        self.events = EventWriter(client, self.names, consumer, settings.events_maxlen, settings.events_channel)
        self.states = JobStates(self.names, consumer, settings.result_ttl_s)
        self.gate = RunGate(
            client,
            self.names,
            consumer,
            settings.claim_idle_ms,
            settings.result_ttl_s,
            events=self.events,
            states=self.states,
            max_attempts=settings.max_attempts,
        )
        self.runs = RunRegistry()
        self.picker = EntryPicker(
            self.leases,
            block_ms=settings.block_ms,
            lookahead=settings.affinity_lookahead,
            max_skips=settings.affinity_max_skips,
            prefer=Affinity(runtime.catalog, runtime.pool, settings.max_job_bytes).prefers,
        )
        self.redis = RedisWaiter(
            shutdown, self.beat, self.leases.ensure_groups, on_recovered=self.picker.hold_take_overs
        )
        outcomes = Outcomes(
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
        self.endings = Endings(
            events=self.events,
            outcomes=outcomes,
            redis=self.redis,
            leases=self.leases,
            runs=self.runs,
            gate=self.gate,
            states=self.states,
            metrics=metrics,
            policy=RetryPolicy(settings.max_attempts, settings.retry_backoff_ms),
            refresh_urls=runtime.outputs.refresh_urls,
        )

        self.warm = WarmCache(
            client,
            self.names,
            runtime.storage,
            ttl_s=settings.warm_ttl_s,
            budget_bytes=settings.warm_cache_bytes,
        )

        # the stages and the typed hand-offs between them
        self.batch_limit = settings.batch_limit(runtime.pool.device)
        self.ready: ReadyQueue[ReadyJob] = ReadyQueue(
            capacity=self.batch_limit,
            on_put=lambda job: self.device.on_ready(job),  # noqa: PLW0108 - the device is built after this queue
        )
        self.picker.warm_allowed = lambda: len(self.ready) == 0
        # Frames wait for encoding in memory: a few jobs' worth at most, so the device runs ahead of the finisher
        # without holding every video of a backlog.
        self.finisher = FinishStage(
            outputs=runtime.outputs,
            endings=self.endings,
            warm=self.warm,
            redis=self.redis,
            leases=self.leases,
            runs=self.runs,
            metrics=metrics,
            shutdown=shutdown,
            beat=self.beat,
            capacity=max(2, self.batch_limit),
        )
        self.intake = IntakeStage(
            settings=settings,
            leases=self.leases,
            picker=self.picker,
            ready=self.ready,
            gate=self.gate,
            runs=self.runs,
            preparer=runtime.preparer,
            models=runtime.models,
            endings=self.endings,
            finisher=self.finisher,
            redis=self.redis,
            make_hooks=self._hooks,
            join=lambda job: self.device.join(job),  # noqa: PLW0108 - the device is built after the intake
            warm=self.warm,
            shutdown=shutdown,
            metrics=metrics,
        )
        self.device = DeviceStage(
            models=runtime.models,
            gate=self.gate,
            redis=self.redis,
            endings=self.endings,
            finisher=self.finisher,
            metrics=metrics,
            ready_again=self.ready.put_back,
        )
        self._previews = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        self.keepalive = Keepalive(
            leases=self.leases, gate=self.gate, runs=self.runs, shutdown=shutdown, claim_idle_ms=settings.claim_idle_ms
        )
        self.group = runtime.models.group  # the followers of this worker group's leader, if it leads one

    # -- lifecycle ------------------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until asked to stop; 0 after a graceful drain, 1 after an immediate stop."""
        intake = threading.Thread(target=self.intake.loop, name="intake", daemon=True)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            self.state.to(WorkerState.STARTING)
            if self._start():
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
        except GroupFailure as exc:
            log.error("%s; stopping: the entries in hand stay pending for the group's next start", exc)
            self.state.to(WorkerState.DEFUNCT)
            return 1
        except BaseException:
            self.state.to(WorkerState.DEFUNCT)
            raise
        finally:
            self.keepalive.stop()
            self.finisher.close()
            self.device.close()
            self._previews.shutdown(wait=False, cancel_futures=True)

    @property
    def jobs_done(self) -> int:
        return self.endings.jobs_done

    def _start(self) -> bool:
        """False when a stop was asked while starting (nothing is in hand then, or it is handed back)."""
        try:
            self.redis.call(self.leases.ensure_groups, stop_on_request=True)
            recovered = self.redis.call(self.leases.recover_own, stop_on_request=True)
        except StopWaiting:
            return False
        if recovered:
            log.info("recovered %d pending entries of consumer %s", len(recovered), self.consumer)
        if self.shutdown.requested:  # e.g. a stop that came while the process was still importing
            return False
        self.keepalive.start()  # before the model loads: recovered entries must stay ours meanwhile
        self.runtime.pool.get(self.runtime.catalog.defaults.model)
        warmed = self.runtime.models.warm_up()  # compiled models: every preset shape, before /readyz says ready
        if warmed:
            log.info("warmed up %s", ", ".join(warmed))
        if self.group is not None:
            self.group.ready(self.settings.group_start_timeout_s)  # the followers have loaded it too
        log.info("worker %s ready on %s", self.consumer, ", ".join(self.names.lanes))
        return not self.shutdown.requested

    def _device_loop(self) -> None:
        wait_s = self.settings.batch_wait_ms / 1000
        while not self.shutdown.requested:
            self.beat()
            batch = self.ready.take(
                self.batch_limit,
                wait_s,
                timeout_s=READY_POLL_S,
                company=lambda priority: self.intake.company_coming(LANES_BY_PRIORITY[priority]),
            )
            if batch:
                self.device.run(batch)
            elif self.group is not None:
                self.group.ping_when_idle()

    def _drain(self, intake: threading.Thread) -> None:
        """Finish what runs; runs prepared but not begun and every waiting entry go back to their lane."""
        if intake.is_alive():
            intake.join()
        for job in self.ready.drain():
            self.endings.abandon(job.run)
        self.leases.hand_back()
        self.finisher.wait_idle()
        self.leases.hand_back()  # a retry scheduled by the last job's failure
        if self.group is not None:
            self.group.send(Dismiss())

    def _hooks(self, run: Run) -> RedisJobHooks | WarmHooks:
        if run.lease.warm:
            cancel = CancelFlag(self.client, self.names.cancel(run.job_id), BestEffort())
            return WarmHooks(on_step=self._step, preempted=lambda: self.device.preempts(run), cancelled=cancel.is_set)
        return RedisJobHooks(
            self.events,
            self.states,
            self.client,
            self.names.cancel(run.job_id),
            run,
            progress_interval_ms=self.settings.progress_interval_ms,
            on_step=self._step,
            preview_interval_ms=self.settings.preview_interval_ms,
            previews=self._previews,
            preview_spent=self.metrics.observe_preview,
        )

    def _step(self) -> None:
        self.beat()
        self.shutdown.check_immediate()

    # -- liveness -----------------------------------------------------------------------------------------------
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


def build_worker(settings: Settings, shutdown: ShutdownFlag) -> Worker:
    """Everything `serve` runs on; an unusable catalog or storage is refused here, before any job. A worker group's
    leader meets its followers first (their models are split over the group as they load)."""
    group, catalog = None, None
    if settings.group_size > 1:
        membership, catalog = join_with(settings)
        group = Channel(membership)
    runtime = build_runtime(settings, group, catalog)
    runtime.storage.check()
    service = Worker(
        settings=settings,
        runtime=runtime,
        client=open_redis(settings),
        consumer=consumer_name(settings, runtime.pool.device),
        shutdown=shutdown,
        metrics=WorkerMetrics(
            models=runtime.catalog.models, build=build_info(runtime.pool.device), group_size=settings.group_size
        ),
    )
    watch_metrics(service)
    return service


def watch_metrics(service: Worker) -> None:
    """Scrape-time readings: queue figures from Redis, heartbeat, model counts, device memory."""
    from worker.queue.depth import read_queue

    metrics = service.metrics
    metrics.watch_heartbeat(service.last_beat)
    metrics.watch_queue(lambda: read_queue(service.client, service.names), [lane.value for lane in LANES_BY_PRIORITY])
    metrics.watch_model_counts(service.runtime.pool.counts)
    metrics.watch_warm_cache(service.warm.reading)
    metrics.watch_device_memory(service.runtime.pool.device_memory)
