"""Issue 3 figures: per-job overhead of the Redis queue path over in-process `generate`, and the gap
between two consecutive jobs when the queue is full.

    .venv/bin/python -m benchmarks.queue_overhead [--jobs 12]

Starts its own redis-server on a free loopback port and a worker (the same Worker as `serve`) in a thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._common import job, median_ms, scratch_catalog
from npc_video_client.client import NpcVideoClient
from tests.support.redis_server import RedisServer
from worker.runtime import build_runner, build_worker
from worker.settings import Settings
from worker.shutdown import ShutdownFlag

SIZE = {"width": 128, "height": 128, "duration": 2.0, "steps": 4}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args()
    root, catalog = scratch_catalog()
    server = RedisServer(Path(tempfile.mkdtemp(prefix="npc-bench-redis-")))
    server.start()
    try:
        settings = Settings(
            catalog=catalog,
            device="cpu",
            storage_url=f"file://{root / 'out'}",
            redis_url=server.url,
            consumer="bench",
            http_port=0,
            block_ms=50,
        )
        in_process = build_runner(settings)
        in_process.run(job("warm", seed=10_000, **SIZE))
        direct = []
        for index in range(args.jobs):
            started = time.perf_counter()
            in_process.run(job(f"direct-{index}", seed=20_000 + index, **SIZE))
            direct.append((time.perf_counter() - started) * 1000)

        shutdown = ShutdownFlag()
        service = build_worker(settings, shutdown)
        spans: list[tuple[float, float]] = []
        generate = service.runner.generate

        def timed_generate(prepared: Any, hooks: Any) -> Any:  # benchmark-only instrumentation
            begin = time.perf_counter()
            try:
                return generate(prepared, hooks)
            finally:
                spans.append((begin, time.perf_counter()))

        service.runner.generate = timed_generate  # type: ignore[method-assign]
        thread = threading.Thread(target=service.serve)
        thread.start()
        client = NpcVideoClient(server.url)
        client.wait(client.submit(job("queue-warm", seed=30_000, **SIZE)), timeout_s=120, poll_s=0.005)
        single = []
        for index in range(args.jobs):
            started = time.perf_counter()
            client.wait(client.submit(job(f"single-{index}", seed=40_000 + index, **SIZE)), timeout_s=120, poll_s=0.005)
            single.append((time.perf_counter() - started) * 1000)
        spans.clear()
        started = time.perf_counter()
        ids = [client.submit(job(f"queued-{index}", seed=50_000 + index, **SIZE)) for index in range(args.jobs)]
        results = [client.wait(job_id, timeout_s=600, poll_s=0.005) for job_id in ids]
        wall_ms = (time.perf_counter() - started) * 1000
        shutdown.request()
        thread.join()

        gaps = [(spans[i + 1][0] - spans[i][1]) * 1000 for i in range(len(spans) - 1)]
        print(
            f"{args.jobs} jobs of {SIZE['width']}x{SIZE['height']}, {results[0].num_frames} frames, "
            f"{SIZE['steps']} steps (tiny Wan, CPU)"
        )
        print(f"in-process generate, per job        {median_ms(direct)}")
        print(f"queue, one job at a time (latency)  {median_ms(single)}")
        print(f"queue overhead per job (median)     {statistics.median(single) - statistics.median(direct):8.1f} ms")
        print(f"queue full, wall per job            {wall_ms / args.jobs:8.1f} ms (encode+upload overlap the next job)")
        print(f"device idle between jobs (full)     {median_ms(gaps)}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
