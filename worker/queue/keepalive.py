"""The keepalive thread: every owned entry and every held job lock stays this worker's while it holds them.

Every third of claim_idle_ms it refreshes the idle time of each owned entry (worker.queue.leases; one that another
consumer owns now is dropped, never stolen back) and renews the lock of each run in progress (worker.queue.runs),
until the worker has let them all go, through a graceful drain too; during a drain it also hands waiting entries
back to their lane. It survives any error: a dead keepalive would let other workers take live jobs over.
"""

from __future__ import annotations

import logging
import threading

import redis

from worker.queue.leases import Leases
from worker.queue.runs import RunGate, RunRegistry
from worker.shutdown import ShutdownFlag

log = logging.getLogger(__name__)


class Keepalive:
    def __init__(
        self, *, leases: Leases, gate: RunGate, runs: RunRegistry, shutdown: ShutdownFlag, claim_idle_ms: int
    ) -> None:
        self.leases = leases
        self.gate = gate
        self.runs = runs
        self.shutdown = shutdown
        self.interval_s = claim_idle_ms / 3000
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="keepalive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The worker has let every entry and lock go (or stops at once): nothing is left to keep."""
        self._released.set()

    def _loop(self) -> None:
        while not self._released.wait(self.interval_s):
            try:
                if self.shutdown.requested and not self.shutdown.immediate:
                    self.leases.hand_back()
                self.leases.keepalive()
                self.gate.renew(self.runs.locks())
            except redis.RedisError as exc:
                log.warning("keepalive failed (%s); trying again in %.1f s", exc, self.interval_s)
            except Exception:
                log.exception("keepalive failed; trying again in %.1f s", self.interval_s)
