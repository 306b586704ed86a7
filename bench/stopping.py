"""A bench stopped from outside keeps what it finished: SIGTERM (`timeout` at a stage's cap, a supervisor) and
SIGINT (Ctrl-C) become a `BenchStopped` exception in the main thread, so the command unwinds (closing its serve
children) and writes its finished rows before it exits with 128 + the signal's number.

The finished rows are on disk before any signal can come (the command rewrites results.json and results.csv after
every row), so even a SIGKILL after the SIGTERM loses nothing finished. A second signal while the bench unwinds
takes the default action at once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class BenchStopped(BaseException):
    """Like KeyboardInterrupt, not an Exception: the failure boundaries of the worker (a job's `except Exception`)
    and of the bench must let it through, not turn it into a failed job."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise BenchStopped (once); the previous handlers come back after."""
    previous = {signum: signal.getsignal(signum) for signum in STOPPING_SIGNALS}

    def stop(signum: int, _frame: FrameType | None) -> None:
        for other in STOPPING_SIGNALS:
            signal.signal(other, signal.SIG_DFL)
        raise BenchStopped(signum)

    for signum in STOPPING_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
