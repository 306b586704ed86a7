"""The producer side: client validation and enqueueing, `npc-worker submit --wait`, and the demo command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from npc_video_client.client import JobRejected, NpcVideoClient
from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.redis_processes import free_port
from tests.support.video import decode_mp4, path_of


def test_invalid_envelope_is_rejected_before_anything_is_enqueued(producer, redis_client, names):
    with pytest.raises(JobRejected, match=r"params\.intensity"):
        producer.submit(envelope("bad", intensity=3))
    assert redis_client.xlen(names.lane("normal")) == 0


def test_submit_stamps_submitted_at_and_uses_the_lane(producer, redis_client, names):
    job_id = producer.submit(envelope("stamped"), lane="low")
    ((_entry_id, fields),) = redis_client.xrange(names.lane("low"))
    body = json.loads(fields[b"job"])
    assert job_id == "stamped" and body["submitted_at"] > 1_700_000_000_000


def test_cancel_sets_the_key_with_a_ttl(producer, redis_client, names):
    producer.cancel("some-job", ttl_s=60)
    assert redis_client.exists(names.cancel("some-job")) and 0 < redis_client.ttl(names.cancel("some-job")) <= 60


def test_wait_times_out_with_a_clear_error(producer):
    with pytest.raises(TimeoutError, match="no-such-job"):
        producer.wait("no-such-job", timeout_s=0.2, poll_s=0.05)


def test_submit_cli_waits_and_prints_the_result(start_worker, redis_server, tmp_path):
    start_worker()
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(envelope("cli-job")))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "submit",
            str(job_file),
            "--lane",
            "high",
            "--wait",
            "--timeout",
            "120",
            "--redis-url",
            redis_server.url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["job_id"] == "cli-job" and result["status"] == "completed"


def test_submit_cli_refuses_an_invalid_job_with_exit_2(tmp_path, redis_server):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(envelope("cli-bad", quality_preset="ultra")))
    done = subprocess.run(
        [sys.executable, "-m", "worker", "submit", str(job_file), "--redis-url", redis_server.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "params.quality_preset" in done.stderr


def test_demo_starts_its_own_redis_and_prints_a_finished_mp4(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_WORKER_")}
    env.update(NPC_WORKER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "worker", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "started a local redis-server" in done.stderr
    url = next(line.split()[-1] for line in done.stdout.splitlines() if line.startswith("MP4 ready:"))
    video = path_of(url)
    assert video.is_relative_to(tmp_path / "outputs")
    result = json.loads(done.stdout[: done.stdout.index("\nMP4 ready:")])
    assert result["status"] == JobStatus.COMPLETED and result["loras"] == [{"name": "tiny-glow", "weight": 0.8}]
    assert decode_mp4(video)[1].shape[0] == result["num_frames"]


def test_client_imports_without_torch():
    code = (
        "import sys, npc_video_client.client, npc_video_client.contract; sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_client_is_usable_with_an_existing_connection(redis_client, names):
    client = NpcVideoClient(client=redis_client)
    client.submit(envelope("reuse"))
    assert redis_client.xlen(names.lane("normal")) == 1
