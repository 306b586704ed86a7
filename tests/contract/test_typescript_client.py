"""The TypeScript client (clients/typescript): its generated types match the schemas, it type-checks, and its
producer runs jobs through a real worker over a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.contract.conftest import NAMES, TYPESCRIPT_DIR, run_checked
from tests.support.jobs import data_uri, envelope, png_bytes
from tests.support.redis_processes import free_port
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
    assert result["metadata"] == {"generation_id": 9001} and result["contract_version"] == "1.2"
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


def test_the_typescript_client_speaks_contract_1_2(node, typescript_build, live):
    """status() of unknown, queued and ended jobs, cancel outcomes, events() to the final event (and at once after
    it), an ended id re-submitted, an unknown event type skipped, an unreachable Redis: see typescript_scenarios.mjs."""
    raw = redis.Redis.from_url(live.url)
    mixed = [
        {"type": "job:teleported", "job_id": "ts-mixed", "status": "processing", "timestamp": 1, "worker": "w"},
        "not json",
        {"type": "job:cancelled", "job_id": "ts-mixed", "status": "cancelled", "timestamp": 2, "worker": "w"},
    ]
    for event in mixed:
        raw.xadd(NAMES.events, {"event": event if isinstance(event, str) else json.dumps(event)})
    script = Path(__file__).with_name("typescript_scenarios.mjs")
    command = [node, str(script), str(typescript_build), live.url, str(free_port()), data_uri(png_bytes())]
    done = subprocess.run(command, cwd=TYPESCRIPT_DIR, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["unknown"]["error"] == "UnknownJob" and "job ts-nobody is unknown" in report["unknown"]["message"]
    queued = report["queued"]["value"]
    assert (queued["status"], queued["attempt"], queued["progress"], queued["contract_version"]) == (
        "queued",
        0,
        0,
        "1.2",
    )
    assert 60 < raw.ttl("ts-idle:state:ts-queued") <= 120
    assert report["cancelQueued"]["value"] == "cancelled" and report["cancelUnknown"]["value"] == "unknown"
    assert report["events"][0] == "job:processing" and report["events"][-1] == "job:completed"
    assert set(report["events"][1:-1]) == {"job:progress"}
    assert report["result"] == "completed"
    assert (report["ended"]["value"]["status"], report["ended"]["value"]["progress"]) == ("completed", 1)
    assert report["late"]["events"] == [] and report["late"]["ms"] < 2000
    assert report["history"][-1] == "job:completed" and report["history"][0] == "job:processing"
    assert (
        report["resubmit"]["error"] == "JobAlreadyEnded"
        and "already ended (completed)" in report["resubmit"]["message"]
    )
    assert report["cancelEnded"]["value"] == "already_ended"
    assert report["mixed"] == ["job:cancelled"]
    assert report["badLane"]["message"] == 'lane: must be high, normal or low (got "urgent")'
    (warm_id,) = report["warmIds"]
    assert warm_id.startswith("warm-") and report["warmStatus"] == {
        "ready": {warm_id: True},
        "total": 1,
        "readyCount": 1,
    }
    assert raw.hget(NAMES.warm_ready, warm_id) is not None  # the worker ran it from the warm lane
    assert report["warmEmpty"]["error"] == "JobRejected"
    assert report["warmCancelIds"] == [warm_id] and 0 < raw.ttl(NAMES.cancel(warm_id)) <= 600
    unreachable = report["unreachable"]
    assert unreachable["error"] == "RedisUnavailable" and "\n" not in unreachable["message"]
    assert (
        unreachable["message"].startswith("Redis at redis://producer:***@127.0.0.1:")
        and "s3cret" not in unreachable["message"]
    )


def test_the_typescript_producer_says_in_one_line_that_redis_is_down(node, typescript_build, tmp_path):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(envelope("ts-down")), encoding="utf-8")
    command = [
        node,
        str(typescript_build / "produce.js"),
        str(job_file),
        "--redis-url",
        f"redis://127.0.0.1:{free_port()}/0",
    ]
    done = subprocess.run(command, cwd=TYPESCRIPT_DIR, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert (
        done.stderr.strip().startswith("error: Redis at redis://127.0.0.1:")
        and len(done.stderr.strip().splitlines()) == 1
    )
