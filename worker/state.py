"""The worker's lifecycle as an explicit state machine, guarded at each transition.

NEW -> STARTING (connecting, recovering its own entries, loading the default model) -> READY (taking jobs)
-> DRAINING (a stop was asked: finishing what runs, handing back what waits) -> STOPPED. DEFUNCT is where a
worker ends when it cannot go on (a second signal, a failure at start). Health and metrics read the state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)


class WorkerState(StrEnum):
    NEW = "new"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"
    DEFUNCT = "defunct"


ALLOWED: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.NEW: frozenset({WorkerState.STARTING, WorkerState.DEFUNCT}),
    WorkerState.STARTING: frozenset({WorkerState.READY, WorkerState.DRAINING, WorkerState.DEFUNCT}),
    WorkerState.READY: frozenset({WorkerState.DRAINING, WorkerState.DEFUNCT}),
    WorkerState.DRAINING: frozenset({WorkerState.STOPPED, WorkerState.DEFUNCT}),
    WorkerState.STOPPED: frozenset(),
    WorkerState.DEFUNCT: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A bug: the worker tried to move between states that do not follow each other."""


class StateMachine:
    def __init__(self, on_change: Callable[[WorkerState], None] | None = None) -> None:
        self._state = WorkerState.NEW
        self._lock = threading.Lock()
        self._on_change = on_change

    @property
    def current(self) -> WorkerState:
        return self._state

    def to(self, state: WorkerState) -> None:
        with self._lock:
            if state not in ALLOWED[self._state]:
                raise IllegalTransition(f"worker cannot go from {self._state.value} to {state.value}")
            log.info("worker state: %s -> %s", self._state.value, state.value)
            self._state = state
        if self._on_change is not None:
            self._on_change(state)

    def is_(self, *states: WorkerState) -> bool:
        return self._state in states
