"""Fixtures for queue tests: a real redis-server per test and in-process workers running in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from npc_video_client.client import NpcVideoClient
from npc_video_client.names import StreamNames
from tests.support.redis_server import RedisServer
from tests.support.worker_process import WorkerProcess
from worker.metrics import WorkerMetrics
from worker.queue.connection import connect
from worker.runtime import build_runtime
from worker.service import Worker
from worker.settings import Settings
from worker.shutdown import ShutdownFlag


@pytest.fixture
def redis_client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


@pytest.fixture
def producer(redis_server: RedisServer) -> NpcVideoClient:
    return NpcVideoClient(redis_server.url)


@pytest.fixture
def names() -> StreamNames:
    return StreamNames("npc")


@dataclass
class RunningWorker:
    service: Worker
    shutdown: ShutdownFlag
    thread: threading.Thread
    exit_code: list[int]

    def stop(self, timeout_s: float = 60) -> int:
        self.shutdown.request()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.exit_code[0]


def worker_settings(tmp_path: Path, catalog_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "catalog": catalog_path,
        "device": "cpu",
        "storage_url": f"file://{tmp_path / 'outputs'}",
        "data_dir": tmp_path / "data",
        "redis_url": redis_url,
        "consumer": "worker-a",
        "http_port": 0,
        "block_ms": 100,
        "retry_backoff_ms": 50,
        "claim_idle_ms": 5_000,
        "progress_interval_ms": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def start_worker(
    tmp_path: Path, catalog_path: Path, redis_server: RedisServer
) -> Iterator[Callable[..., RunningWorker]]:
    running: list[RunningWorker] = []

    def start(**overrides: Any) -> RunningWorker:
        settings = worker_settings(tmp_path, catalog_path, redis_server.url, **overrides)
        shutdown = ShutdownFlag()
        service = Worker(
            settings=settings,
            runtime=build_runtime(settings),
            client=connect(settings.redis_url, settings.block_ms),
            consumer=settings.consumer or "worker-a",
            shutdown=shutdown,
            metrics=WorkerMetrics(),
        )
        exit_code: list[int] = []
        thread = threading.Thread(target=lambda: exit_code.append(service.serve()), daemon=True)
        thread.start()
        handle = RunningWorker(service, shutdown, thread, exit_code)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.stop()


@pytest.fixture
def spawn(tmp_path: Path, catalog_path: Path, redis_server: RedisServer) -> Iterator[Callable[..., WorkerProcess]]:
    """`spawn(consumer, **settings)`: `npc-worker serve` as a real child process (killed at the end)."""
    started: list[WorkerProcess] = []

    def start(consumer: str, **overrides: Any) -> WorkerProcess:
        settings = {
            "catalog": catalog_path,
            "device": "cpu",
            "storage_url": f"file://{tmp_path / 'outputs'}",
            "redis_url": redis_server.url,
            "block_ms": 200,
            "claim_idle_ms": 3000,
            "progress_interval_ms": 0,
        }
        settings.update(overrides)
        worker = WorkerProcess(tmp_path, consumer, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
