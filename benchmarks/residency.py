"""Issue 5 figures: loading a model from disk vs swapping it back from CPU memory, and memory growth over many jobs.

    .venv/bin/python benchmarks/residency.py [--jobs 100]

Two tiny Wan models under a device memory budget that holds only one, so every model change offloads the other.
On the CPU device a swap moves nothing (the weights already are in CPU memory): its figure is the bookkeeping
only. On CUDA a swap is a host-to-device copy of the weights, roughly bytes / PCIe bandwidth.
RSS is read from /proc/self/status after the first 10 jobs and after all of them, alternating models and LoRAs:
a steady figure means neither swaps nor LoRA switches leak.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import job, median_ms, scratch_catalog
from models.residency import GIB
from npc_video_client.contract import JobStatus
from tests.support.models import write_model
from worker.jobs import JobRunner
from worker.runtime import build_runner
from worker.settings import Settings

MODELS = ("tiny-wan", "other-wan")
LORAS = ("glow", "sparkle", "comfy")
SIZE = {"width": 32, "height": 32, "duration": 0.5, "steps": 1}
WARM_JOBS = 10


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS line in /proc/self/status (this benchmark reads Linux's /proc)")


def with_second_model(catalog: Path, root: Path) -> Path:
    write_model("wan-i2v", root / "other-wan", seed=1)
    extra = f"""
[models.other-wan]
family = "wan-i2v"
path = "{root / "other-wan"}"
dtype = "float32"

[styles.anime]
model = "other-wan"
"""
    catalog.write_text(catalog.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return catalog


def runner_with_budget(root: Path, catalog: Path, budget: int | None) -> JobRunner:
    settings = Settings(
        catalog=catalog, device="cpu", storage_url=f"file://{root / 'out'}", device_memory_budget=budget
    )
    return build_runner(settings)


def load_vs_swap(root: Path, catalog: Path, rounds: int) -> int:
    """Time disk loads and swaps through the pool; returns one model's weight bytes."""
    probe = runner_with_budget(root, catalog, None).pool
    probe.get(MODELS[0])
    size = probe.stats(MODELS[0]).weight_bytes
    pool = runner_with_budget(root, catalog, int(size * 1.5)).pool
    loads = {name: pool.acquire(name).load_ms for name in MODELS}
    swaps: dict[str, list[float]] = {name: [] for name in MODELS}
    for index in range(2 * rounds):
        name = MODELS[index % 2]
        swaps[name].append(pool.acquire(name).swap_ms)
    print(f"model weights: {size} bytes each ({size / GIB:.6f} GiB); budget holds one (1.5x)")
    for name in MODELS:
        stats = pool.stats(name)
        print(f"{name:<10} load from disk {loads[name]:8.1f} ms   swap back from CPU {median_ms(swaps[name])}")
        print(f"{'':<10} disk loads {stats.disk_loads}, swaps {stats.swaps}, offloads {stats.offloads}")
    print("(device is cpu: the swap moves nothing, so it is bookkeeping only; on CUDA it is a host-to-device copy)")
    return size


def rss_over_jobs(root: Path, catalog: Path, budget: int, jobs: int) -> None:
    runner = runner_with_budget(root, catalog, budget)
    swap_ms, rss_warm = [], 0.0
    for index in range(jobs):
        model = MODELS[index % 2]
        result = runner.run(
            job(
                f"rss-{index}",
                seed=index,
                loras=[LORAS[index % 3]],
                art_style="anime" if model == "other-wan" else None,
                **SIZE,
            )
        )
        if result.status != JobStatus.COMPLETED or result.model != model:
            raise RuntimeError(f"job {index} did not complete on {model}: {result.error_message}")
        if result.timings.swap_ms:
            swap_ms.append(result.timings.swap_ms)
        if index + 1 == WARM_JOBS:
            gc.collect()
            rss_warm = rss_mib()
    gc.collect()
    rss_end = rss_mib()
    print(f"{jobs} jobs alternating {len(MODELS)} models and {len(LORAS)} LoRAs, 32x32, 1 step, 0.5 s, cpu")
    print(f"RSS after {WARM_JOBS:>3} jobs {rss_warm:8.1f} MiB")
    print(f"RSS after {jobs:>3} jobs {rss_end:8.1f} MiB")
    growth = rss_end - rss_warm
    print(f"growth {growth:+.1f} MiB over {jobs - WARM_JOBS} jobs ({growth * 1024 / (jobs - WARM_JOBS):+.1f} KiB/job)")
    print(f"swap_ms in results: median {statistics.median(swap_ms):.1f} ms over {len(swap_ms)} swapping jobs")
    for name in MODELS:
        stats = runner.pool.stats(name)
        adapters = runner.pool.get(name).adapters
        print(
            f"{name:<10} disk loads {stats.disk_loads}, swaps {stats.swaps}, offloads {stats.offloads}; "
            f"LoRA disk loads {adapters.disk_loads}, evictions {adapters.evictions}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="swaps timed per model")
    args = parser.parse_args()
    root, catalog = scratch_catalog()
    catalog = with_second_model(catalog, root)
    size = load_vs_swap(root, catalog, args.rounds)
    print()
    rss_over_jobs(root, catalog, int(size * 1.5), args.jobs)


if __name__ == "__main__":
    main()
