"""One real worker for the whole folder (redis-server + `build_worker` on the tiny Wan model, in a thread), and the
TypeScript client built once. Tests here use distinct job ids, so they share the worker and its events stream."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from npc_video_client.names import StreamNames
from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.redis_server import RedisServer
from worker.service import Worker, build_worker
from worker.settings import Settings
from worker.shutdown import ShutdownFlag

REPO = Path(__file__).resolve().parents[2]
TYPESCRIPT_DIR = REPO / "clients" / "typescript"
SCHEMA_DIR = REPO / "docs" / "schema"
NAMES = StreamNames("npc")


@dataclass
class LiveWorker:
    redis: RedisServer
    service: Worker
    outputs: Path

    @property
    def url(self) -> str:
        return self.redis.url


@pytest.fixture(scope="session")
def live(
    tmp_path_factory: pytest.TempPathFactory, tiny_wan_dir: Path, tiny_loras: dict[str, Path]
) -> Iterator[LiveWorker]:
    root = tmp_path_factory.mktemp("contract")
    server = RedisServer(root / "redis", persistent=False)
    server.start()
    settings = Settings(
        catalog=write_catalog(root, tiny_catalog_text(tiny_wan_dir, tiny_loras)),
        device="cpu",
        storage_url=f"file://{root / 'outputs'}",
        data_dir=root / "data",
        redis_url=server.url,
        consumer="contract-worker",
        http_port=0,
        block_ms=100,
        retry_backoff_ms=50,
        claim_idle_ms=5_000,
        progress_interval_ms=0,
    )
    shutdown = ShutdownFlag()
    service = build_worker(settings, shutdown)
    exit_code: list[int] = []
    thread = threading.Thread(target=lambda: exit_code.append(service.serve()), name="contract-worker", daemon=True)
    thread.start()
    yield LiveWorker(server, service, root / "outputs")
    shutdown.request()
    thread.join(60)
    server.stop()
    assert exit_code == [0], "the worker did not stop cleanly"


def run_checked(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def node() -> str:
    """node and the TypeScript client's packages (scripts/setup.sh installs both: apt nodejs npm, npm ci)."""
    binary = shutil.which("node")
    assert binary, "node is not installed (scripts/setup.sh installs nodejs and npm)"
    installed = TYPESCRIPT_DIR / "node_modules" / ".package-lock.json"
    assert installed.is_file(), "clients/typescript has no node_modules: run scripts/setup.sh (it runs npm ci)"
    return binary


@pytest.fixture(scope="session")
def typescript_build(node: str) -> Path:
    """The TypeScript client compiled to clients/typescript/dist (git-ignored): compiled JS resolves `redis` from
    the package's node_modules, so it is built inside the package."""
    run_checked([node, str(TYPESCRIPT_DIR / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."], TYPESCRIPT_DIR)
    return TYPESCRIPT_DIR / "dist"
