"""A real Redis Cluster of three masters (no replicas) on free loopback ports, built with `redis-cli --cluster`.

Each node gets its data port and its cluster bus port (`cluster-port`, Redis 7) explicitly, so nothing is assumed
about port + 10000 being free.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.redis_processes import free_ports, stop_processes, wait_for_ping

NODES = 3


class RedisClusterServers:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        ports = free_ports(2 * NODES)
        self.ports, self.bus_ports = ports[:NODES], ports[NODES:]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Any node is a seed: the cluster client discovers the others and the slot map from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout_s: float = 30.0) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        assert binary and cli, "redis-server and redis-cli are not installed (scripts/setup.sh installs them)"
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            command = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
                "--dir", str(node_dir),
                "--appendonly", "no",
                "--save", "",
                "--logfile", "redis.log",
            ]  # fmt: skip
            self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_for_ping(redis.Redis(port=port, socket_connect_timeout=0.2), f"redis-server on {port}", timeout_s)
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert create.returncode == 0, create.stdout + create.stderr
        deadline = time.monotonic() + timeout_s
        while not all(_cluster_ok(port) for port in self.ports):
            assert time.monotonic() < deadline, "the cluster did not reach cluster_state:ok"
            time.sleep(0.1)

    def stop(self) -> None:
        stop_processes(self.processes)
        self.processes = []


def _cluster_ok(port: int) -> bool:
    info: str = redis.Redis(port=port, decode_responses=True).execute_command("CLUSTER", "INFO")
    return "cluster_state:ok" in info


@contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(directory)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
