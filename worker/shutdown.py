"""Signal handling: handlers only set a flag; the loop and the per-step callback act on it.

First SIGTERM/SIGINT: stop reading, finish the current job, ack, exit 0. Second: stop at the next
denoising step and exit at once, leaving the entry pending for another worker.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class ImmediateShutdown(BaseException):
    """Raised at the next safe point after a second signal. A BaseException so no job handler catches it."""


class ShutdownFlag:
    def __init__(self) -> None:
        self.signals = 0
        self.stopping = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

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
