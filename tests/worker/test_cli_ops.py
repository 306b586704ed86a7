"""The operator commands: --version, status, cancel, watch, dead list|retry|purge; their exit codes, and the one-line
errors that replace tracebacks (Redis down, settings, port in use, CUDA absent, missing weights, S3 unreachable)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.jobs import envelope, png_bytes
from tests.support.redis_processes import free_port
from tests.support.streams import events
from tests.support.waiting import wait_until
from worker.cli import app

DOWN_URL = f"redis://127.0.0.1:{free_port()}/0"


def run(*args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """The console command as operators run it, with only the NPC_WORKER_* variables given here."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], cwd=cwd, env=_env(env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    env.update({"HF_HUB_OFFLINE": "1", "NPC_WORKER_LOG_LEVEL": "WARNING", **extra})
    return env


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def cli(redis_server: Any) -> Any:
    """`cli(*args)`: the app in-process against the test Redis."""
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args], env={"NPC_WORKER_REDIS_URL": redis_server.url})


def raw_submit(redis_client: Any, job: dict[str, Any], lane: str = "normal") -> None:
    """As any producer may: without the client's validation."""
    redis_client.xadd(f"npc:jobs:{lane}", {"job": json.dumps(job)})


# -- version ----------------------------------------------------------------------------------------------


def test_version_names_the_worker_the_contract_and_the_client(tmp_path):
    done = run("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.startswith("npc-worker 0.")
        and "(contract v1." in done.stdout
        and "npc-video-client " in done.stdout
    )


# -- status, cancel, watch --------------------------------------------------------------------------------


def test_status_exit_codes_say_finished_failed_or_not_yet(cli, start_worker, producer, redis_client):
    unknown = cli("status", "nobody")
    assert unknown.exit_code == 4 and "job nobody: not finished yet" in unknown.output
    start_worker()
    producer.submit(envelope("st-ok", steps=1))
    raw_submit(redis_client, envelope("st-bad", intensity=1.5))
    producer.wait("st-ok", timeout_s=120)
    producer.wait("st-bad", timeout_s=60)
    done = cli("status", "st-ok")
    assert done.exit_code == 0 and json.loads(done.output)["status"] == "completed"
    failed = cli("status", "st-bad")
    assert failed.exit_code == 1 and json.loads(failed.output)["error_code"] == "invalid_params"


def test_watch_shows_a_job_until_it_is_cancelled_and_exits_1(cli, tmp_path, redis_server, start_worker, producer):
    start_worker()
    producer.submit(envelope("w-long", steps=200, width=64, height=64, duration=2.0))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "worker", "watch", "w-long"],
        cwd=tmp_path,
        env=_env({"NPC_WORKER_REDIS_URL": redis_server.url}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: producer.result("w-long") is None and _progressed(producer, "w-long"), what="running")
        cancelled = cli("cancel", "w-long")
        assert cancelled.exit_code == 0 and "cancel requested for job w-long" in cancelled.output
        stdout, stderr = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 1, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["status"] == "cancelled"
    assert "job w-long cancelled" in stderr
    assert "already ended (cancelled)" in cli("cancel", "w-long").output
    finished = cli("watch", "w-long")  # an ended job: its result at once
    assert finished.exit_code == 1 and '"status":"cancelled"' in finished.output


def _progressed(producer: Any, job_id: str) -> bool:
    return any(e["type"] == "job:progress" for e in events(producer.redis, producer.names, job_id))


def test_watch_of_a_job_that_does_not_end_in_time_exits_4(cli):
    late = cli("watch", "never-submitted", "--timeout", "0.5")
    assert late.exit_code == 4 and "did not end within 0.5 s" in late.output


# A script's `npc-worker watch > events &` starts with SIGINT ignored (a shell without job control does that to
# background jobs); `kill -INT` and `kill -TERM` must still stop it cleanly.
AS_A_BACKGROUND_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'worker', 'watch', '--json'])"
)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_watch_without_a_job_prints_every_event_until_stopped(
    stop, tmp_path, redis_server, redis_client, start_worker, producer
):
    start_worker()
    watcher = subprocess.Popen(
        [sys.executable, "-c", AS_A_BACKGROUND_JOB],
        cwd=tmp_path,
        env=_env({"NPC_WORKER_REDIS_URL": redis_server.url}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        wait_until(lambda: _blocked_in_xread(redis_client), timeout_s=60, what="the watcher reading the events")
        producer.submit(envelope(f"w-{stop.name}", steps=2))
        seen: list[dict[str, Any]] = []
        while not any(event["type"] == "job:completed" for event in seen):
            line = watcher.stdout.readline()
            assert line, watcher.stderr.read() if watcher.stderr else ""
            seen.append(json.loads(line))
        watcher.send_signal(stop)
        assert watcher.wait(timeout=30) == 0
    finally:
        watcher.kill()
    assert seen[0]["type"] == "job:processing" and {event["job_id"] for event in seen} == {f"w-{stop.name}"}


def _blocked_in_xread(redis_client: Any) -> bool:
    return any(client.get("cmd") == "xread" for client in redis_client.client_list())


# -- dead list | retry | purge ----------------------------------------------------------------------------


def test_dead_retry_runs_the_job_again_once_its_cause_is_fixed(cli, tmp_path, start_worker, producer, redis_client):
    images = tmp_path / "images"
    images.mkdir()
    portrait = images / "npc.png"
    start_worker(input_roots=[images])
    producer.submit(envelope("dl-1", npc_base_image=str(portrait), steps=1), lane="high")
    assert producer.wait("dl-1", timeout_s=120).error_code == "invalid_image"  # the file is not there yet
    listed = cli("dead", "list")
    assert listed.exit_code == 0 and "dl-1  invalid_image  attempt" in listed.output
    assert "from npc:jobs:high:" in listed.output and "1 of 1 dead entries" in listed.output
    dead_id = json.loads(cli("dead", "list", "--json").output.splitlines()[0])["id"]

    portrait.write_bytes(png_bytes())
    retried = cli("dead", "retry", dead_id)
    assert retried.exit_code == 0 and "job dl-1 is back on npc:jobs:high" in retried.output
    wait_until(lambda: (result := producer.result("dl-1")) is not None and result.status == "completed", timeout_s=120)
    assert redis_client.xlen("npc:jobs:dead") == 0
    assert cli("status", "dl-1").exit_code == 0

    job = json.dumps(envelope("dl-1", npc_base_image=str(portrait), steps=1))  # a dead copy of the completed job
    redis_client.xadd(
        "npc:jobs:dead", {"job": job, "error": json.dumps({"job_id": "dl-1"}), "source": "npc:jobs:high/1-0"}
    )
    again = redis_client.xrange("npc:jobs:dead")[0][0].decode()
    refused = cli("dead", "retry", again)
    assert refused.exit_code == 2 and "job dl-1 has a completed result" in refused.output
    missing = cli("dead", "retry", "1-1")
    assert missing.exit_code == 2 and "no entry 1-1 in npc:jobs:dead" in missing.output


def test_dead_retry_of_a_payload_without_a_job_id_puts_it_back_as_it_was(cli, redis_client):
    """An unreadable payload has no job id of its own (`unknown:...` names its entry): no result keys to clear."""
    payload = b'{"params": {"npc_name": "x"'  # cut short
    error = json.dumps({"job_id": "unknown:low:1-0", "error_code": "invalid_params"})
    dead_id = redis_client.xadd("npc:jobs:dead", {"job": payload, "error": error, "source": "npc:jobs:low/1-0"})
    retried = cli("dead", "retry", dead_id.decode())
    assert retried.exit_code == 0 and "is back on npc:jobs:low" in retried.output
    assert [fields[b"job"] for _id, fields in redis_client.xrange("npc:jobs:low")] == [payload]
    assert redis_client.xlen("npc:jobs:dead") == 0


def test_dead_purge_asks_for_yes(cli, redis_client):
    for _ in range(2):
        redis_client.xadd("npc:jobs:dead", {"job": b"{}", "error": b"{}", "source": "npc:jobs:low/1-0"})
    unconfirmed = cli("dead", "purge")
    assert unconfirmed.exit_code == 2 and "deletes all 2 entries" in unconfirmed.output
    assert redis_client.xlen("npc:jobs:dead") == 2
    confirmed = cli("dead", "purge", "--yes")
    assert confirmed.exit_code == 0 and "deleted 2 dead entries" in confirmed.output
    assert redis_client.xlen("npc:jobs:dead") == 0


def test_submit_wait_that_times_out_exits_4(cli, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(envelope("nobody-serves-this")), encoding="utf-8")
    late = cli("submit", str(job), "--wait", "--timeout", "0.3")
    assert late.exit_code == 4 and "no result for job nobody-serves-this" in late.output


# -- one-line errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("status", "j"), ("cancel", "j"), ("watch", "j"), ("watch",), ("dead", "list"), ("dead", "retry", "1-0"),
     ("dead", "purge", "--yes")],
)  # fmt: skip
def test_client_commands_say_in_one_line_that_redis_is_down(args):
    done = CliRunner().invoke(app, [*args, "--redis-url", DOWN_URL])
    assert done.exit_code == 3, done.output
    assert one_line_error(done.output).startswith(f"error: Redis at {DOWN_URL} is unreachable: ")


def test_submit_in_a_real_process_says_redis_is_down_without_a_traceback(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(envelope()), encoding="utf-8")
    done = run("submit", str(job), cwd=tmp_path, NPC_WORKER_REDIS_URL="redis://u:hunter2@127.0.0.1:1/0")
    assert done.returncode == 3
    assert one_line_error(done.stderr).startswith("error: Redis at redis://u:***@127.0.0.1:1/0 is unreachable")


def test_settings_errors_name_the_variable_and_the_flag(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_CLAIM_IDLE_MS", "5")
    done = CliRunner().invoke(app, ["status", "j", "--prefix", "a b"])
    assert done.exit_code == 2
    line = one_line_error(done.output)
    assert "NPC_WORKER_CLAIM_IDLE_MS: Input should be greater than or equal to 1000 (got '5')" in line
    assert "NPC_WORKER_PREFIX (--prefix): String should match pattern" in line and "(got 'a b')" in line


def test_a_cluster_without_a_hash_tagged_prefix_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_REDIS_CLUSTER", "1")
    done = CliRunner().invoke(app, ["status", "j"])
    assert done.exit_code == 2
    assert "NPC_WORKER_PREFIX 'npc' has no hash tag" in one_line_error(done.output)
    assert "set NPC_WORKER_PREFIX={npc}" in done.output


def serve_env(catalog: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "NPC_WORKER_CATALOG": str(catalog),
        "NPC_WORKER_DEVICE": "cpu",
        "NPC_WORKER_STORAGE_URL": f"file://{tmp_path / 'outputs'}",
        "NPC_WORKER_REDIS_URL": DOWN_URL,  # serve refuses all of these before it talks to Redis
        **extra,
    }


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path, catalog_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = serve_env(catalog_path, tmp_path, NPC_WORKER_HTTP_HOST="127.0.0.1")
        done = run("serve", "--http-port", str(port), cwd=tmp_path, **env)
    assert done.returncode == 2
    assert one_line_error(done.stderr) == (
        f"error: HTTP port {port} on 127.0.0.1 is already in use; choose another with NPC_WORKER_HTTP_PORT or "
        "--http-port (0 disables /healthz, /readyz and /metrics)"
    )


def test_serve_refuses_cuda_without_a_gpu_in_one_line(tmp_path, catalog_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    done = run("serve", "--device", "cuda", cwd=tmp_path, **serve_env(catalog_path, tmp_path))
    assert done.returncode == 2
    assert "NPC_WORKER_DEVICE is 'cuda' but no CUDA device is available" in one_line_error(done.stderr)


def test_serve_refuses_a_model_whose_weights_are_missing_before_any_job(tmp_path, catalog_path):
    catalog_path.write_text(
        catalog_path.read_text() + '\n[models.gone]\nfamily = "wan-i2v"\npath = "/srv/absent/wan"\ndtype = "float32"\n'
    )
    done = run("serve", "--http-port", "0", cwd=tmp_path, **serve_env(catalog_path, tmp_path))
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert f"catalog {catalog_path}: [models.gone.path] directory /srv/absent/wan does not exist" in line


def test_serve_with_an_unreachable_object_store_exits_3_in_one_line(tmp_path, catalog_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = serve_env(
        catalog_path, tmp_path, NPC_WORKER_STORAGE_URL="s3://npc-videos/clips", NPC_WORKER_S3_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )  # fmt: skip
    done = run("serve", "--http-port", "0", cwd=tmp_path, **env)
    assert done.returncode == 3
    assert "object storage s3://npc-videos/clips is not writable" in one_line_error(done.stderr)
