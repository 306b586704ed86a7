"""The TypeScript client (clients/typescript): its generated types match the schemas, it type-checks, and its
producer runs jobs through a real worker over a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.contract.conftest import NAMES, TYPESCRIPT_DIR, run_checked
from tests.support.jobs import envelope
from tests.support.video import path_of


def test_regenerating_the_types_gives_the_committed_file(node, tmp_path):
    fresh = tmp_path / "contract.ts"
    run_checked([node, "scripts/generate.mjs", str(fresh)], TYPESCRIPT_DIR)
    committed = (TYPESCRIPT_DIR / "src" / "contract.ts").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, "regenerate: cd clients/typescript && npm run generate"


def test_the_typescript_sources_type_check(node):
    run_checked([node, "node_modules/typescript/bin/tsc", "--noEmit", "-p", "."], TYPESCRIPT_DIR)


def produce(node: str, build: Path, live: Any, job: dict[str, Any], tmp_path: Path, *flags: str) -> Any:
    job_file = tmp_path / f"{job['job_id']}.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    command = [node, str(build / "produce.js"), str(job_file), "--redis-url", live.url, "--timeout", "120", *flags]
    return subprocess.run(command, cwd=TYPESCRIPT_DIR, capture_output=True, text=True, timeout=180, check=False)


def test_the_typescript_producer_runs_a_job_through_a_real_worker(node, typescript_build, live, tmp_path):
    job = {**envelope("ts-job", loras=["glow:0.5"], seed=2**53 - 1), "metadata": {"generation_id": 9001}}
    done = produce(node, typescript_build, live, job, tmp_path, "--lane", "high")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["job_id"] == "ts-job" and result["status"] == "completed", result.get("error_message")
    assert result["metadata"] == {"generation_id": 9001} and result["contract_version"] == "1.1"
    assert result["seed"] == 2**53 - 1 and result["loras"] == [{"name": "glow", "weight": 0.5}]
    assert path_of(result["url"]).is_file()
    raw = redis.Redis.from_url(live.url)
    assert raw.llen(NAMES.done("ts-job")) == 1  # the waiter left the result for others


def test_the_typescript_producer_cancels(node, typescript_build, live, tmp_path):
    job = {**envelope("ts-cancel", steps=200, width=32, height=32), "metadata": {"generation_id": 9002}}
    done = produce(node, typescript_build, live, job, tmp_path, "--cancel")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "cancelled" and result["error_code"] == "cancelled"
    assert result["metadata"] == {"generation_id": 9002}


def test_the_typescript_producer_refuses_a_seed_javascript_cannot_carry(node, typescript_build, live, tmp_path):
    job = envelope("ts-seed", seed=2**53 + 1)  # JSON.parse reads 2^53: no longer the producer's number
    done = produce(node, typescript_build, live, job, tmp_path)
    assert done.returncode == 2
    assert "params.seed" in done.stderr and "Number.MAX_SAFE_INTEGER" in done.stderr
    raw = redis.Redis.from_url(live.url)
    assert not raw.exists(NAMES.result("ts-seed"))
