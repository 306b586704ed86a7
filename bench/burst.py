"""A burst: N jobs submitted at once through the queue, measured as the device sees them.

It answers what the latency rows cannot: with a full queue, how much of the wall time is the device busy, how long
does it wait between one job's device work and the next one's, and how many jobs per second come out (batching
of compatible jobs shows here). Figures come from each result's `timings.generate_started_at` /
`generate_ended_at`: jobs that ran as one batch share one interval, which counts once.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from npc_video_client.contract import JobResult


@dataclass(frozen=True)
class Burst:
    jobs: int
    wall_ms: float  # first submit to last result
    jobs_per_s: float
    busy_fraction: float | None  # device time / the span from its first start to its last end
    gap_ms_p50: float | None  # between one device interval's end and the next one's start
    gap_ms_p95: float | None
    batch_sizes: dict[str, int]  # batch size -> jobs that ran in batches of that size

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def device_intervals(results: list[JobResult]) -> list[tuple[float, float]]:
    """The distinct device intervals (unix ms) of the results, in order."""
    spans = {
        (result.timings.generate_started_at, result.timings.generate_ended_at)
        for result in results
        if result.timings.generate_started_at is not None and result.timings.generate_ended_at is not None
    }
    return sorted((float(start), float(end)) for start, end in spans if start is not None and end is not None)


def measure(results: list[JobResult], wall_ms: float) -> Burst:
    intervals = device_intervals(results)
    busy = gaps = None
    if intervals:
        span = intervals[-1][1] - intervals[0][0]
        busy_ms = sum(end - start for start, end in intervals)
        busy = busy_ms / span if span > 0 else 1.0
        gaps = [max(0.0, later[0] - earlier[1]) for earlier, later in itertools.pairwise(intervals)]
    sizes = Counter(str(result.batch_size) for result in results if result.batch_size is not None)
    return Burst(
        jobs=len(results),
        wall_ms=wall_ms,
        jobs_per_s=len(results) / (wall_ms / 1000) if wall_ms > 0 else 0.0,
        busy_fraction=busy,
        gap_ms_p50=float(statistics.median(gaps)) if gaps else None,
        gap_ms_p95=float(np.percentile(gaps, 95)) if gaps else None,
        batch_sizes=dict(sorted(sizes.items())),
    )
