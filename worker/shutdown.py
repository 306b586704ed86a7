"""Signal handling: handlers only set a flag; the loop and the per-step callback act on it.

First SIGTERM/SIGINT: stop reading, finish the current job, ack, exit 0. Second: stop at the next
denoising step and exit at once, leaving the entry pending for another worker.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_early_signals: list[int] = []


def _record_early(signum: int, _frame: FrameType | None) -> None:
    _early_signals.append(signum)


def catch_early_signals() -> None:
    """Called first thing in a worker process (`python -m worker serve`, what the supervisor starts), before the
    heavy imports: a SIGTERM/SIGINT that comes while it is still importing is kept, and `ShutdownFlag.install`
    honours it as a graceful stop (the worker exits 0 before taking anything), instead of the signal's default
    action killing a process that had done nothing yet."""
    signal.signal(signal.SIGTERM, _record_early)
    signal.signal(signal.SIGINT, _record_early)


class ImmediateShutdown(BaseException):
    """Raised at the next safe point after a second signal. A BaseException so no job handler catches it."""


class ShutdownFlag:
    def __init__(self) -> None:
        self.signals = 0
        self.stopping = threading.Event()

    def install(self) -> None:
        """Take over SIGTERM/SIGINT, counting those that came before (worker.shutdown.catch_early_signals)."""
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        for signum in _early_signals:
            self._handle(signum, None)
        _early_signals.clear()

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        self.stopping.set()

    def request(self) -> None:
        """Ask for a graceful stop from code (tests, the demo)."""
        self._handle(0, None)

    @property
    def requested(self) -> bool:
        return self.signals >= 1

    @property
    def immediate(self) -> bool:
        return self.signals >= 2

    def check_immediate(self) -> None:
        if self.immediate:
            raise ImmediateShutdown
