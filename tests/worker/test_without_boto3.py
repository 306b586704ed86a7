"""boto3 is imported only where S3 is used: a worker that stores in a folder and reads data: images runs where boto3
is not installed (the GPU check carries no boto3 wheels: scripts/gpu/wheels.txt). The child process below makes
boto3, botocore and s3transfer unimportable, as on such a node, then imports the CLI, the service and the bench and
runs a job end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.jobs import envelope

CHILD = """
import json, sys
for name in ("boto3", "botocore", "s3transfer"):
    sys.modules[name] = None  # `import boto3` now raises ImportError, as where it is not installed
import bench.cli, bench.session, worker.cli, worker.service
from worker.cli import app, load_plugins
from worker.runtime import build_runtime
from worker.settings import Settings

load_plugins(app)
runtime = build_runtime(Settings(catalog=sys.argv[1], device="cpu", storage_url=sys.argv[2]))
result = runtime.run(json.loads(sys.argv[3]))
loaded = sys.modules.get("boto3") is not None
print(json.dumps({"status": result.status.value, "error": result.error_message, "boto": loaded}))
"""


def test_a_job_runs_end_to_end_without_boto3(catalog_path: Path, tmp_path: Path) -> None:
    job = envelope("no-boto", width=32, height=32, duration=0.5, steps=1)
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    env.update(HF_HUB_OFFLINE="1", NPC_WORKER_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(catalog_path), f"file://{tmp_path / 'out'}", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "completed", "error": None, "boto": False}
    assert list((tmp_path / "out").rglob("*.mp4"))
