"""Prometheus metrics of one worker process (its own registry, so tests can run several).

Outcomes are disjoint: every job that ends adds exactly 1 to `npc_jobs_total`, under one `outcome` (completed,
cache_hit, failed, expired, cancelled) and, for the last three, its `error_code`. Attempts that will be retried
and duplicate entries of jobs that already ended are counted apart. Every labelled series exists at 0 from the
start, so rates and alerts work before the first job. Queue figures are read from Redis at scrape time, with
`npc_redis_up` saying whether that worked (during an outage they are NaN, not stale).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from npc_video_client.contract import RETRYABLE_CODES, ErrorCode, JobResult, JobStatus, QualityPreset
from worker.state import WorkerState

WARM_OUTCOMES = ("finished", "already_warm", "preempted", "cancelled", "failed")
PHASES = ("queue", "prepare", "load", "swap", "generate", "encode", "upload", "total")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)
LOAD_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200)
FAILURE_CODES = tuple(code for code in ErrorCode if code not in (ErrorCode.DEADLINE_EXCEEDED, ErrorCode.CANCELLED))
OUTCOME_LABELS = (
    ("completed", ""),
    ("cache_hit", ""),
    *(("failed", code.value) for code in FAILURE_CODES),
    ("expired", ErrorCode.DEADLINE_EXCEEDED.value),
    ("cancelled", ErrorCode.CANCELLED.value),
)


@dataclass(frozen=True)
class QueueReading:
    """One scrape of Redis: per lane depth (lag + pending, what KEDA's redis-streams scaler sees) and the age of
    the oldest pending entry, and the dead-letter stream's length."""

    depth: dict[str, float]
    oldest_pending_s: dict[str, float]
    dead_letters: float


def outcome_of(result: JobResult) -> tuple[str, str]:
    if result.status == JobStatus.COMPLETED:
        return ("cache_hit" if result.cache_hit else "completed", "")
    return (result.status.value, result.error_code.value if result.error_code else "")


class _CountsCollector(Collector):
    """Per-model counters kept by the model pool (disk loads, swaps, offloads, LoRA loads and evictions)."""

    def __init__(self, counts: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        families = {
            "disk_loads": CounterMetricFamily("npc_model_disk_loads", "models read from disk", labels=["model"]),
            "swaps": CounterMetricFamily("npc_model_swaps", "models moved back onto the device", labels=["model"]),
            "offloads": CounterMetricFamily("npc_model_offloads", "models moved to CPU memory", labels=["model"]),
            "lora_loads": CounterMetricFamily(
                "npc_lora_adapter_loads", "LoRA files loaded as adapters", labels=["model"]
            ),
            "lora_evictions": CounterMetricFamily(
                "npc_lora_adapter_evictions", "LoRA adapters freed to stay within the cache size", labels=["model"]
            ),
        }
        for model, counts in self.counts().items():
            for name, family in families.items():
                family.add_metric([model], counts.get(name, 0))
        yield from families.values()


class _QueueCollector(Collector):
    def __init__(self, read: Callable[[], QueueReading], lanes: Iterable[str]) -> None:
        self.read = read
        self.lanes = tuple(lanes)

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("npc_queue_depth", "entries waiting or pending per lane", labels=["lane"])
        oldest = GaugeMetricFamily(
            "npc_oldest_pending_age_seconds", "age of the oldest delivered, unacknowledged entry", labels=["lane"]
        )
        dead = GaugeMetricFamily("npc_dead_letters", "entries in the dead-letter stream")
        up = GaugeMetricFamily("npc_redis_up", "1 when this scrape could read the queue from Redis")
        try:
            reading = self.read()
        except Exception:  # an outage must show as redis_up 0 and NaN, never as a failed scrape
            reading = None
        for lane in self.lanes:
            depth.add_metric([lane], reading.depth.get(lane, 0.0) if reading else float("nan"))
            oldest.add_metric([lane], reading.oldest_pending_s.get(lane, 0.0) if reading else float("nan"))
        dead.add_metric([], reading.dead_letters if reading else float("nan"))
        up.add_metric([], 1.0 if reading else 0.0)
        yield from (depth, oldest, dead, up)


class _WarmCacheCollector(Collector):
    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        videos = GaugeMetricFamily("npc_warm_cache_videos", "warmed videos in the warm cache (all workers)")
        size = GaugeMetricFamily("npc_warm_cache_bytes", "storage the warmed videos take (all workers)")
        reading: tuple[float, float]
        try:
            reading = self.read()
        except Exception:  # an outage shows as NaN, never as a failed scrape
            reading = (float("nan"), float("nan"))
        videos.add_metric([], reading[0])
        size.add_metric([], reading[1])
        yield from (videos, size)


class WorkerMetrics:
    def __init__(self, models: Iterable[str] = (), build: dict[str, str] | None = None, group_size: int = 1) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.jobs = Counter(
            "npc_jobs", "jobs that ended, by outcome and error code", ["outcome", "error_code"], registry=self.registry
        )
        for outcome, code in OUTCOME_LABELS:
            self.jobs.labels(outcome=outcome, error_code=code)
        self.retries = Counter(
            "npc_job_retries", "failed attempts that will run again", ["error_code"], registry=self.registry
        )
        for code in RETRYABLE_CODES:
            self.retries.labels(error_code=code.value)
        self.duplicates = Counter(
            "npc_duplicate_entries",
            "entries of jobs that had already ended (acknowledged only)",
            registry=self.registry,
        )
        self.warm_jobs = Counter(
            "npc_warm_jobs",
            "warm (pre-generation) jobs by how they ended: finished (a video made), already_warm (it was stored), "
            "preempted (gave way to a real job; it runs again later), cancelled (by its producer), failed (dropped)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in WARM_OUTCOMES:
            self.warm_jobs.labels(outcome=outcome)
        self.result_lookups = Counter(
            "npc_result_lookups", "real jobs that looked their video up in storage", registry=self.registry
        )
        self.warm_hits = Counter(
            "npc_warm_hits", "real jobs whose video a warm job had made (or was making: joined)", registry=self.registry
        )
        self.previews = Counter("npc_previews", "live previews (job:preview) encoded", registry=self.registry)
        self.preview_cpu = Counter(
            "npc_preview_cpu_seconds",
            "CPU time spent encoding and sending live previews (on a CPU device, taken from the steps)",
            registry=self.registry,
        )
        self._tally = {"lookups": 0, "warm_hits": 0}
        self.warm_hit_ratio = Gauge(
            "npc_warm_hit_ratio", "warm hits / result lookups since this worker started", registry=self.registry
        )
        self.warm_hit_ratio.set_function(lambda: self._tally["warm_hits"] / max(1, self._tally["lookups"]))
        self.phase_seconds = Histogram(
            "npc_job_phase_seconds",
            "time per job phase",
            ["model", "preset", "phase"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "npc_model_load_seconds",
            "reading a model from disk",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=self.registry,
        )
        self.swap_seconds = Histogram(
            "npc_model_swap_seconds",
            "moving a model back onto the device",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=self.registry,
        )
        for model in models:
            self.load_seconds.labels(model=model)
            self.swap_seconds.labels(model=model)
            for preset in QualityPreset:
                for phase in PHASES:
                    self.phase_seconds.labels(model=model, preset=preset.value, phase=phase)
        self.in_flight = Gauge("npc_jobs_in_flight", "jobs running or finishing here", registry=self.registry)
        self.heartbeat_age = Gauge(
            "npc_heartbeat_age_seconds", "seconds since the worker loop last showed progress", registry=self.registry
        )
        self.state = Gauge("npc_worker_state", "1 for the worker's current state", ["state"], registry=self.registry)
        for state in WorkerState:
            self.state.labels(state=state.value).set(1.0 if state is WorkerState.NEW else 0.0)
        self.device_memory = Gauge("npc_device_memory_bytes", "device memory", ["kind"], registry=self.registry)
        self.build_info = Gauge(
            "npc_build_info",
            "versions of this worker (value 1)",
            ["version", "contract_version", "torch", "diffusers", "device"],
            registry=self.registry,
        )
        if build is not None:
            self.build_info.labels(**build).set(1)
        self.group_size = Gauge(
            "npc_worker_group_size",
            "devices this consumer runs each job on: 1 on its own, N for a worker group's leader",
            registry=self.registry,
        )
        self.group_size.set(group_size)

    # -- what the service reports -------------------------------------------------------------------------
    def observe_final(self, result: JobResult) -> None:
        outcome, code = outcome_of(result)
        self.jobs.labels(outcome=outcome, error_code=code).inc()
        if result.status != JobStatus.COMPLETED or result.preset is None or result.model is None:
            return
        timings = result.timings.model_dump()
        for phase in PHASES:
            value = timings.get(f"{phase}_ms")
            if value is not None:
                self.phase_seconds.labels(model=result.model, preset=result.preset.value, phase=phase).observe(
                    value / 1000
                )
        if result.timings.load_ms:
            self.load_seconds.labels(model=result.model).observe(result.timings.load_ms / 1000)
        if result.timings.swap_ms:
            self.swap_seconds.labels(model=result.model).observe(result.timings.swap_ms / 1000)

    def observe_preview(self, cpu_s: float) -> None:
        self.previews.inc()
        self.preview_cpu.inc(cpu_s)

    def observe_lookup(self, warm_hit: bool) -> None:
        """A real job looked its video up; `warm_hit`: a warm job had made it (or was making it)."""
        self.result_lookups.inc()
        self._tally["lookups"] += 1
        if warm_hit:
            self.warm_hits.inc()
            self._tally["warm_hits"] += 1

    def observe_retry(self, code: ErrorCode) -> None:
        self.retries.labels(error_code=code.value).inc()

    def set_state(self, current: WorkerState) -> None:
        for state in WorkerState:
            self.state.labels(state=state.value).set(1.0 if state is current else 0.0)

    # -- read at scrape time -----------------------------------------------------------------------------
    def watch_heartbeat(self, last_beat: Callable[[], float]) -> None:
        self.heartbeat_age.set_function(lambda: time.monotonic() - last_beat())

    def watch_queue(self, read: Callable[[], QueueReading], lanes: Iterable[str]) -> None:
        self.registry.register(_QueueCollector(read, lanes))

    def watch_model_counts(self, counts: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.registry.register(_CountsCollector(counts))

    def watch_warm_cache(self, read: Callable[[], tuple[int, int]]) -> None:
        """`read()` -> (videos, bytes) in the warm cache, read at scrape time (NaN when Redis cannot be read)."""
        self.registry.register(_WarmCacheCollector(read))

    def watch_device_memory(self, read: Callable[[str], float]) -> None:
        """`read(kind)` for kind in allocated, reserved, total, peak (0 without a CUDA device)."""
        for kind in ("allocated", "reserved", "total", "peak"):
            self.device_memory.labels(kind=kind).set_function(_reader(read, kind))


def _reader(read: Callable[[str], float], kind: str) -> Callable[[], float]:
    return lambda: read(kind)
