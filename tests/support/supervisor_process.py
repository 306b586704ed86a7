"""`npc-worker serve --devices ...` as a real process tree: the supervisor and its worker children."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_until


def free_port_run(count: int) -> int:
    """A base port such that base .. base + count - 1 are all free on loopback."""
    for _ in range(200):
        base = random.randint(20_000, 60_000)
        probes: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no run of {count} free ports found")


class SupervisorProcess:
    def __init__(
        self, log_dir: Path, devices: str, count: int, consumer: str = "sup", group: int = 1, **settings: Any
    ) -> None:
        """`count`: workers (units) with an HTTP port: one per device, or one per group of `group` devices."""
        self.count = count
        self.base_port = free_port_run(count)
        self.log_path = log_dir / "supervisor.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_WORKER_")}
        env.update({f"NPC_WORKER_{key.upper()}": str(value) for key, value in settings.items()})
        env.update(
            NPC_WORKER_CONSUMER=consumer,
            NPC_WORKER_HTTP_PORT=str(self.base_port),
            NPC_WORKER_HTTP_HOST="127.0.0.1",
            HF_HUB_OFFLINE="1",
        )
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "serve", "--devices", devices, "--group", str(group)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, index: int, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.base_port + index}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def ready(self, index: int) -> bool:
        try:
            return self.get(index, "/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 180) -> None:
        def all_ready() -> bool:
            assert self.process.poll() is None, f"supervisor exited early:\n{self.log()}"
            return all(self.ready(index) for index in range(self.count))

        wait_until(all_ready, timeout_s=timeout_s, interval_s=0.2, what="every worker ready")

    def children(self) -> dict[str, int]:
        """Consumer name -> pid of the supervisor's live children (Linux /proc); a group's leader for a group."""
        return {consumer: pid for (consumer, rank), pid in self.members().items() if rank == 0}

    def members(self) -> dict[tuple[str, int], int]:
        """(consumer name, group rank) -> pid of the supervisor's live children (Linux /proc)."""
        pid = self.process.pid
        try:
            listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return {}
        found = {}
        for child in map(int, listed):
            try:
                environ = dict(
                    item.split(b"=", 1)
                    for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                    if b"=" in item
                )
            except OSError:
                continue
            if b"NPC_WORKER_CONSUMER" in environ:
                rank = int(environ.get(b"NPC_WORKER_GROUP_RANK", b"0"))
                found[(environ[b"NPC_WORKER_CONSUMER"].decode(), rank)] = child
        return found

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout_s: float = 90) -> int:
        return self.process.wait(timeout=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Never leave a worker behind: the children are killed too when the supervisor is."""
        children = list(self.members().values())
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self._log.close()
