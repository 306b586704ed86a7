"""Wall-clock milliseconds (the contract's unit) and a monotonic stopwatch."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)


class Stopwatch:
    def __init__(self) -> None:
        self._start = time.perf_counter()

    def ms(self) -> float:
        return round((time.perf_counter() - self._start) * 1000, 1)
