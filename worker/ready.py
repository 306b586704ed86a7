"""Prepared jobs waiting for the device: the hand-over between the intake thread and the device loop.

The intake thread reads, validates, fetches and decodes, resolves and checks the cache of the next jobs while the
device runs the current one, so the device never waits for any of that; it keeps at most `capacity` jobs ready.
The device takes the job of the highest lane first (oldest first within a lane) and, with it, the ready jobs of
the same lane that can share its denoiser calls (the same `batch_key`), up to `max_batch`: a batch is formed only
from the lane being served. With `wait_s` > 0 a lone job waits that long for company; by default it never waits.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

STOP_POLL_S = 0.1


@dataclass(eq=False)
class ReadyJob:
    priority: int  # the lane's: 0 is high
    batch_key: Hashable | None  # None: runs alone
    payload: Any  # what the device loop needs to run it (the service's run, prepared job, hooks)
    order: int = field(default_factory=itertools.count().__next__)


class ReadyQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._jobs: list[ReadyJob] = []
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)

    def put(self, job: ReadyJob, stopping: Callable[[], bool]) -> bool:
        """Wait for room, then add; False (not added) when `stopping()` turns true while waiting."""
        with self._cond:
            while len(self._jobs) >= self.capacity:
                if stopping():
                    return False
                self._cond.wait(STOP_POLL_S)
            self._jobs.append(job)
            self._cond.notify_all()
            return True

    def take(self, max_batch: int, wait_s: float, timeout_s: float) -> list[ReadyJob]:
        """The next batch (possibly of one), or [] when nothing was ready within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            first = min(self._jobs, key=lambda job: (job.priority, job.order))
            batch_until = time.monotonic() + wait_s
            while True:
                batch = self._companions(first, max_batch)
                left = batch_until - time.monotonic()
                if len(batch) >= max_batch or first.batch_key is None or left <= 0:
                    break
                self._cond.wait(left)
            for job in batch:
                self._jobs.remove(job)
            self._cond.notify_all()
            return batch

    def _companions(self, first: ReadyJob, max_batch: int) -> list[ReadyJob]:
        if first.batch_key is None:
            return [first]
        same = sorted(
            (job for job in self._jobs if job.priority == first.priority and job.batch_key == first.batch_key),
            key=lambda job: job.order,
        )
        return [first, *(job for job in same if job is not first)][:max_batch]

    def drain(self) -> list[ReadyJob]:
        """Everything still waiting (a stop): the caller gives it back."""
        with self._cond:
            jobs, self._jobs = self._jobs, []
            self._cond.notify_all()
            return jobs
