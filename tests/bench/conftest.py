"""Bench runs made once per session on the tiny Wan catalog: `npc-worker bench` as researchers run it, in a child
process (in-process mode, and through a real redis-server and a real serve child)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer

from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.redis_server import RedisServer

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schema" / "bench-results.schema.json"
SMOKE = ["--repeats", "2", "--warmup", "1", "--override", "width=64 height=64 steps=2 duration=0.5"]


@pytest.fixture(scope="session")
def npc_worker_app() -> typer.Typer:
    """The `npc-worker` application as `main` runs it: with the commands of its plugins, `bench` among them."""
    from worker.cli import app, load_plugins

    load_plugins(app)
    return app


@pytest.fixture(scope="session")
def bench_catalog(tmp_path_factory: pytest.TempPathFactory, tiny_wan_dir: Path, tiny_loras: dict[str, Path]) -> Path:
    return write_catalog(tmp_path_factory.mktemp("bench-catalog"), tiny_catalog_text(tiny_wan_dir, tiny_loras))


def npc_worker_bench(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    env.update({"HF_HUB_OFFLINE": "1", "NPC_WORKER_DATA_DIR": str(cwd / "data"), "NPC_WORKER_DEVICE": "cpu"})
    env["OMP_NUM_THREADS"] = "1"  # the test machines' cores are shared: one torch thread per process is faster
    return subprocess.run(
        [sys.executable, "-m", "worker", "bench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def load_valid_results(out: Path) -> dict[str, Any]:
    """results.json, checked against the shipped JSON Schema."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(results, schema, format_checker=jsonschema.FormatChecker())
    return results


@pytest.fixture(scope="session")
def in_process_run(tmp_path_factory: pytest.TempPathFactory, bench_catalog: Path) -> Path:
    """Two presets of the catalog as written, in-process."""
    root = tmp_path_factory.mktemp("bench-in-process")
    out = root / "out"
    run = npc_worker_bench(
        "--catalog",
        str(bench_catalog),
        "--presets",
        "realtime,fast",
        *SMOKE,
        "--out",
        str(out),
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("bench-redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def queue_run(tmp_path_factory: pytest.TempPathFactory, bench_catalog: Path, redis_url: str) -> Path:
    """One model, one preset through Redis and an `npc-worker serve` child, beside stock diffusers (which is the
    bare pipeline call in the bench's own process, whatever --through says)."""
    root = tmp_path_factory.mktemp("bench-queue")
    out = root / "out"
    run = npc_worker_bench(
        "--catalog",
        str(bench_catalog),
        "--models",
        "tiny-wan",
        "--presets",
        "realtime",
        "--through",
        "queue",
        "--redis-url",
        redis_url,
        "--setting",
        "catalog",
        "--setting",
        "stock",
        *SMOKE,
        "--out",
        str(out),
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    return out
