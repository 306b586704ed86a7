"""What one run measured, and one row of results (a model, preset and setting) summarised from its runs.

Stages partition a run's end-to-end time (docs/benchmarks.md): each run reports the stages of its path, and a
stage a path does not have is null in the row.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# In the order they happen. In-process runs: prepare, load, lora, the pipeline's stages, encode, upload. Queue
# runs: queue, prepare, load, generate, encode, upload, transport. Stock runs: generate (the bare pipeline call).
STAGES = (
    "queue",
    "prepare",
    "load",
    "lora",
    "text_encode",
    "image_encode",
    "denoise",
    "vae_decode",
    "frames_to_host",
    "generate",
    "encode",
    "upload",
    "transport",
)


@dataclass
class RunRecord:
    e2e_ms: float
    stages: dict[str, float]
    steady_step_seconds: list[float]  # step durations, the first step of the run left out when it had >= 2
    steps: int
    frames: int
    width: int
    height: int
    fps: int
    cfg: float
    ran_model: str
    output_bytes: int | None
    video: Path | None = None  # the run's MP4 and poster, until the scratch storage is removed
    poster: Path | None = None
    frames_file: Path | None = None  # the frames as generated (.npy in the scratch folder), kept for psnr_db
    condition_ms: float | None = None  # text and image encoding (the result's timings.condition_ms)


@dataclass
class Row:
    model: str
    ran_model: str
    preset: str
    setting: str
    through: str
    runs: int
    warmup: int
    p50_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    e2e_ms: list[float]
    steps: int
    frames: int
    width: int
    height: int
    fps: int
    cfg: float
    cfg_passes: int | None
    s_per_step: float | None
    stages: dict[str, float | None]
    peak_device_bytes: int | None
    host_rss_bytes: int | None
    output_bytes: int | None
    latent_tokens: int | None
    flops_per_step: float | None
    achieved_tflops: float | None
    peak_fraction: float | None
    video: str | None = None  # relative to the results folder
    poster: str | None = None
    psnr_db: float | str | None = None  # against the baseline row (bench.psnr); "inf": identical frames
    condition_first_ms: float | None = None  # the row's first run: prompt and image not yet cached
    condition_ms: float | None = None  # p50 of the measured runs (cached after the first)
    burst: dict[str, Any] | None = None  # bench.burst.Burst, with --burst
    warm: dict[str, Any] | None = None  # bench.warming.WarmFigures, with --warm
    first_run_stages: dict[str, float | None] | None = None  # the row's first run (warm-up or not): cold costs
    host_rss_start_bytes: int | None = None  # resident set before the first measured run (after the warm-up)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return f"{self.model} / {self.preset} / {self.setting}"


def median_or_none(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def stage_medians(records: list[RunRecord]) -> dict[str, float | None]:
    return {
        stage: median_or_none([record.stages[stage] for record in records if stage in record.stages])
        for stage in STAGES
    }


@dataclass(frozen=True)
class Summary:
    """The latency figures of a row's measured runs."""

    p50_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    s_per_step: float | None
    stages: dict[str, float | None]
    output_bytes: int | None


def summarize(records: list[RunRecord]) -> Summary:
    if not records:
        raise ValueError("a row needs at least one measured run")
    e2e = [record.e2e_ms for record in records]
    steps = [seconds for record in records for seconds in record.steady_step_seconds]
    sizes = [record.output_bytes for record in records if record.output_bytes is not None]
    return Summary(
        p50_ms=float(np.percentile(e2e, 50)),
        p95_ms=float(np.percentile(e2e, 95)),
        min_ms=min(e2e),
        max_ms=max(e2e),
        s_per_step=median_or_none(steps),
        stages=stage_medians(records),
        output_bytes=int(statistics.median(sizes)) if sizes else None,
    )
