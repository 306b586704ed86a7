"""A worker built the way `npc-worker serve` builds it (worker.runtime.build_worker: catalog, storage check, the
Redis client the settings describe), running on a thread of the test process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.service import Worker, build_worker
from worker.settings import Settings
from worker.shutdown import ShutdownFlag


def fast_settings(tmp_path: Path, catalog_path: Path, **overrides: Any) -> Settings:
    """Fast timings for tests; everything else as given."""
    values: dict[str, Any] = {
        "catalog": catalog_path,
        "device": "cpu",
        "storage_url": f"file://{tmp_path / 'outputs'}",
        "data_dir": tmp_path / "data",
        "consumer": "worker-a",
        "http_port": 0,
        "block_ms": 100,
        "retry_backoff_ms": 50,
        "claim_idle_ms": 3_000,
        "progress_interval_ms": 0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Serving:
    service: Worker
    shutdown: ShutdownFlag
    thread: threading.Thread
    exit_codes: list[int]

    def stop(self, timeout_s: float = 60) -> int:
        self.shutdown.request()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.exit_codes[0]


@contextmanager
def serving(settings: Settings) -> Iterator[Serving]:
    shutdown = ShutdownFlag()
    service = build_worker(settings, shutdown)
    exit_codes: list[int] = []
    thread = threading.Thread(target=lambda: exit_codes.append(service.serve()), name="worker", daemon=True)
    thread.start()
    handle = Serving(service, shutdown, thread, exit_codes)
    try:
        yield handle
    finally:
        if thread.is_alive():
            handle.stop()
