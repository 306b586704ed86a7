"""The README's main command: a whole round trip on the embedded defaults, then a clean shutdown.

Starts a local redis-server if none answers at the configured URL, builds the tiny model if missing,
runs the worker (the same Worker as `serve`, in a thread), submits an example job through the producer
client, waits for the result and prints where the MP4 is.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobResult
from worker.local_redis import LocalRedisError, answers, throwaway_redis
from worker.service import build_worker
from worker.settings import Settings
from worker.shutdown import ShutdownFlag

log = logging.getLogger(__name__)
DEMO_PREFIX = "npc-demo"


@contextmanager
def local_redis(url: str) -> Iterator[str]:
    """The configured Redis when it answers; otherwise a throwaway redis-server on a free port."""
    if answers(url):
        yield url
        return
    try:
        with throwaway_redis("npc-demo-redis-") as local_url:
            log.info("no Redis answers at %s: started a local redis-server at %s", url, local_url)
            yield local_url
    except LocalRedisError as exc:
        raise RuntimeError(f"no Redis answers at {url}, and {exc}") from exc


def example_job(portrait: Path) -> dict[str, object]:
    image = base64.b64encode(portrait.read_bytes()).decode()
    return {
        "job_id": f"demo-{int(time.time() * 1000)}",
        "operation_type": "npc_response",
        "params": {
            "npc_id": "alice",
            "npc_name": "Alice",
            "npc_base_image": f"data:image/png;base64,{image}",
            "expression": "giggling",
            "emotion": "flustered",
            "animation": "blush",
            "intensity": 0.8,
            "art_style": "anime",
            "quality_preset": "realtime",
        },
    }


def run_demo(settings: Settings, timeout_s: float = 600.0) -> JobResult:
    with local_redis(settings.redis_url) as redis_url:
        settings = settings.model_copy(update={"redis_url": redis_url, "http_port": 0})
        shutdown = ShutdownFlag()
        service = build_worker(settings, shutdown)
        exit_codes: list[int] = []
        thread = threading.Thread(target=lambda: exit_codes.append(service.serve()), name="worker")
        thread.start()
        try:
            client = NpcVideoClient(redis_url, settings.prefix)
            portrait = settings.data_dir.expanduser().resolve() / "npcs" / "alice.png"
            job_id = client.submit(example_job(portrait), lane="high")
            log.info("submitted job %s; waiting for the worker", job_id)
            return client.wait(job_id, timeout_s=timeout_s)
        finally:
            shutdown.request()
            thread.join()
            log.info("worker stopped (exit %s)", exit_codes[0] if exit_codes else "?")
