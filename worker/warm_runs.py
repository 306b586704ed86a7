"""Warm runs: how a pre-generation job (the warm lane) behaves while it is on the device.

A warm run tells nobody about its steps (only its end is an event), counts no attempt and writes no job state. It
gives way: when a real job is put in the ready queue, the warm run stops at its next step (`Preempted`) and its
entry waits to run again later, from the start (its conditioning stays in the cache). A real job identical to the
warm run (the same content key) joins it instead of starting again: it follows the warm run's steps (its own
progress events, its own cancel) and, when the warm run's video is stored, ends as a cache hit of it. A producer
cancels a warm job like any job (its cancel key: the NPC left the scene): it stops at its next step, unless a real
job has joined it and needs its video.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from worker.job import Frames, JobHooks


class Preempted(Exception):
    """A warm run gave way to a real job at a denoising step; its entry runs again later."""


@dataclass(eq=False)
class Joiner:
    """A real job riding along with a warm run: its own hooks, and what to do when it is cancelled on the way."""

    hooks: JobHooks
    cancelled: Callable[[], None]


class WarmHooks:
    """The hooks (worker.job.JobHooks) of a warm run."""

    def __init__(
        self, *, on_step: Callable[[], None], preempted: Callable[[], bool], cancelled: Callable[[], bool]
    ) -> None:
        self.on_step = on_step  # the worker's heartbeat, and a second signal's immediate stop
        self.preempted = preempted
        self.cancelled = cancelled  # the producer cancelled the warm job itself
        self._joiners: list[Joiner] = []
        self._lock = threading.Lock()  # joiners come from the intake thread while the run steps on the device

    def join(self, joiner: Joiner) -> None:
        with self._lock:
            self._joiners.append(joiner)

    def joiners(self) -> list[Joiner]:
        with self._lock:
            return list(self._joiners)

    def progress(self, step: int, total_steps: int) -> None:
        self.on_step()
        for joiner in self.joiners():
            joiner.hooks.progress(step, total_steps)

    def cancel_requested(self) -> bool:
        """The warm job was cancelled and no real job rides along. A real job waiting for the device raises
        `Preempted` instead; a joiner cancelled on the way leaves the run."""
        self.on_step()
        if self.preempted():
            raise Preempted
        for joiner in self.joiners():
            if joiner.hooks.cancel_requested():
                with self._lock:
                    self._joiners.remove(joiner)
                joiner.cancelled()
        return not self.joiners() and self.cancelled()

    def preview_due(self, step: int, total_steps: int) -> bool:
        return False  # never for warm runs: nobody is watching

    def preview(self, step: int, total_steps: int, frames: Frames, fps: float) -> None:
        return None
