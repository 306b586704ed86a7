"""What every real-redis fixture needs (one server, a cluster, a sentinel deployment): free loopback ports, the
redis-server binary, waiting for a PING, stopping the processes."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all sockets are held until every port is chosen)."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            held.append(probe)
        return [int(probe.getsockname()[1]) for probe in held]
    finally:
        for probe in held:
            probe.close()


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (scripts/setup.sh installs it)"
    return binary


def wait_for_ping(client: redis.Redis, what: str, timeout_s: float = 10.0) -> None:
    """Until the server behind `client` answers PING; fails naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.05)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all, then wait for each (killed after 10 s)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
