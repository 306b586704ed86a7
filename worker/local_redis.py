"""A throw-away redis-server on a free loopback port, for the demo and the bench when no Redis is configured.

It keeps nothing on disk (`--save ""` in a temporary folder) and is stopped when the block ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

START_TIMEOUT_S = 10.0


class LocalRedisError(RuntimeError):
    """redis-server is missing, or did not start."""


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_redis(folder_prefix: str) -> Iterator[str]:
    """Start redis-server, yield its URL, stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LocalRedisError("redis-server is not installed (scripts/setup.sh installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=folder_prefix) as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise LocalRedisError(f"the throw-away redis-server on port {port} did not start")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)
