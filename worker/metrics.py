"""Prometheus metrics of one worker process (its own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from npc_video_client.contract import JobResult, JobStatus
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

PHASES = ("queue", "prepare", "generate", "encode", "upload", "total")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)


class _ResidencyCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        families = {
            field: CounterMetricFamily(f"npc_model_{field}", help_text, labels=["model"])
            for field, help_text in (
                ("disk_loads", "models read from disk"),
                ("swaps", "models moved back onto the device from CPU memory"),
                ("offloads", "models moved to CPU memory to make room"),
            )
        }
        for model, counts in self.stats().items():
            for field, family in families.items():
                family.add_metric([model], getattr(counts, field))
        yield from families.values()


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "npc_jobs",
            "jobs by outcome (completed, failed, retried, dead, expired, cancelled, duplicate)",
            ["outcome"],
            registry=self.registry,
        )
        self.phase_seconds = Histogram(
            "npc_job_phase_seconds",
            "time per job phase",
            ["preset", "phase"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("npc_jobs_in_flight", "jobs running or finishing here", registry=self.registry)
        self.queue_depth = Gauge(
            "npc_queue_depth", "entries waiting or pending per lane", ["lane"], registry=self.registry
        )
        self.device_memory = Gauge("npc_device_memory_bytes", "device memory", ["kind"], registry=self.registry)

    def observe_result(self, result: JobResult) -> None:
        self.jobs.labels(outcome=result.status.value).inc()
        if result.status != JobStatus.COMPLETED or result.preset is None:
            return
        timings = result.timings.model_dump()
        for phase in PHASES:
            value = timings.get(f"{phase}_ms")
            if value is not None:
                self.phase_seconds.labels(preset=result.preset.value, phase=phase).observe(value / 1000)

    def watch_queue(self, lane: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(lane=lane).set_function(depth)

    def watch_residency(self, stats: Callable[[], dict[str, Any]]) -> None:
        """Per-model disk loads, swaps back onto the device and offloads to CPU memory (models.residency)."""
        self.registry.register(_ResidencyCollector(stats))

    def watch_device_memory(self, allocated: Callable[[], float], reserved: Callable[[], float]) -> None:
        self.device_memory.labels(kind="allocated").set_function(allocated)
        self.device_memory.labels(kind="reserved").set_function(reserved)
