"""A real Sentinel deployment on loopback: a primary, one replica and two sentinels (`redis-server --sentinel`,
the same binary as Debian's redis-sentinel), quorum 1, so `SENTINEL FAILOVER` promotes the replica at once.

Both servers run with `min-replicas-to-write 1`, as docs/deploy.md recommends: without it the old primary keeps
accepting writes from clients still connected to it until the sentinels demote it (seconds), and it throws them
away when it re-syncs from the new primary; with it, it answers NOREPLICAS instead, which the worker waits out."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.redis_processes import free_ports, redis_server_binary, stop_processes, wait_for_ping

MASTER_NAME = "npc-primary"


class SentinelDeployment:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.primary_port, self.replica_port, *self.sentinel_ports = free_ports(4)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels(self) -> str:
        """The NPC_WORKER_REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self, timeout_s: float = 30.0) -> None:
        safe_writes = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
        self._server("primary", self.primary_port, *safe_writes)
        self._server("replica", self.replica_port, *safe_writes, "--replicaof", "127.0.0.1", str(self.primary_port))
        for port in self.sentinel_ports:
            folder = self.directory / f"sentinel-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "sentinel.conf"  # sentinels rewrite their file with what they learn
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile sentinel.log\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 1\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n",
                encoding="utf-8",
            )
            self._spawn([redis_server_binary(), str(config), "--sentinel"])
        deadline = time.monotonic() + timeout_s
        while not self._replica_known():
            assert time.monotonic() < deadline, "the sentinels did not discover the replica"
            time.sleep(0.1)

    def _server(self, name: str, port: int, *extra: str) -> None:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        self._spawn(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
             "--appendonly", "no", "--logfile", "redis.log", *extra]
        )  # fmt: skip
        wait_for_ping(redis.Redis(port=port, socket_connect_timeout=0.2), f"redis-server {name}")

    def _spawn(self, command: list[str]) -> None:
        self.processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], decode_responses=True)

    def _replica_known(self) -> bool:
        """Every sentinel lists the replica as connected and in sync (what it needs to promote it)."""
        try:
            for index in range(len(self.sentinel_ports)):
                replicas = self.sentinel(index).execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                if not any(_ready(replica) for replica in replicas):
                    return False
        except redis.ConnectionError:
            return False
        return True

    def master_port(self, index: int = 0) -> int:
        host_port = self.sentinel(index).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return int(host_port[1])

    def fail_over(self, timeout_s: float = 30.0) -> None:
        """Promote the replica (SENTINEL FAILOVER) and wait until every sentinel names it as master and the old
        primary, demoted, replicates from it (the new primary takes writes again from then on)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sentinel(0).execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
                break
            except redis.ResponseError as exc:  # NOGOODSLAVE until the sentinel has fresh INFO from the replica
                if "NOGOODSLAVE" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        promoted, demoted = redis.Redis(port=self.replica_port), redis.Redis(port=self.primary_port)
        while not (
            all(self.master_port(index) == self.replica_port for index in range(len(self.sentinel_ports)))
            and promoted.info("replication")["role"] == "master"
            and demoted.info("replication").get("master_link_status") == "up"
            and int(promoted.info("replication").get("min_slaves_good_slaves", 0)) >= 1
        ):
            assert time.monotonic() < deadline, "the failover did not finish"
            time.sleep(0.1)

    def stop(self) -> None:
        stop_processes(self.processes)
        self.processes = []


def _ready(replica: dict[str, object]) -> bool:
    """A replica as SENTINEL REPLICAS describes it (redis-py parses the reply into a dict)."""
    return replica.get("flags") == "slave" and replica.get("master-link-status") == "ok"


@contextmanager
def sentinel_deployment(directory: Path) -> Iterator[SentinelDeployment]:
    deployment = SentinelDeployment(directory)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
