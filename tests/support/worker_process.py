"""`npc-worker serve` as a real child process: for signals, kill -9 and several workers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.redis_processes import free_port
from tests.support.waiting import wait_until


class WorkerProcess:
    def __init__(self, log_dir: Path, consumer: str, **settings: Any) -> None:
        self.consumer = consumer
        self.http_port = free_port()
        self.log_path = log_dir / f"{consumer}.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("NPC_WORKER_")}
        env.update({f"NPC_WORKER_{key.upper()}": str(value) for key, value in settings.items()})
        env.setdefault("OMP_NUM_THREADS", "1")  # several workers share the test machine's cores: no oversubscription
        env.update(
            NPC_WORKER_CONSUMER=consumer,
            NPC_WORKER_HTTP_PORT=str(self.http_port),
            NPC_WORKER_HTTP_HOST="127.0.0.1",
            HF_HUB_OFFLINE="1",
        )
        self._log = self.log_path.open("ab")  # a restart under the same name appends
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker", "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_ready(self, timeout_s: float = 120) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, f"worker exited early:\n{self.log()}"
            try:
                return self.get("/readyz")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout_s=timeout_s, interval_s=0.2, what=f"{self.consumer} ready")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout_s: float = 60) -> int:
        return self.process.wait(timeout=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()
