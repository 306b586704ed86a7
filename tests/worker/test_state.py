"""worker.state: the worker's lifecycle, guarded at every transition."""

from __future__ import annotations

import itertools
import threading

import pytest

from worker.state import ALLOWED, IllegalTransition, StateMachine, WorkerState

S = WorkerState
PATH_TO = {
    S.NEW: [],
    S.STARTING: [S.STARTING],
    S.READY: [S.STARTING, S.READY],
    S.DRAINING: [S.STARTING, S.READY, S.DRAINING],
    S.STOPPED: [S.STARTING, S.READY, S.DRAINING, S.STOPPED],
    S.DEFUNCT: [S.DEFUNCT],
}
LEGAL = {
    (S.NEW, S.STARTING),
    (S.NEW, S.DEFUNCT),
    (S.STARTING, S.READY),
    (S.STARTING, S.DRAINING),
    (S.STARTING, S.DEFUNCT),
    (S.READY, S.DRAINING),
    (S.READY, S.DEFUNCT),
    (S.DRAINING, S.STOPPED),
    (S.DRAINING, S.DEFUNCT),
}
ALL_PAIRS = list(itertools.product(WorkerState, WorkerState))


def machine_in(state: WorkerState, seen: list[WorkerState] | None = None) -> StateMachine:
    machine = StateMachine(on_change=seen.append if seen is not None else None)
    for step in PATH_TO[state]:
        machine.to(step)
    return machine


def test_the_table_is_the_documented_lifecycle():
    assert {(a, b) for a, targets in ALLOWED.items() for b in targets} == LEGAL


@pytest.mark.parametrize(("start", "target"), [pair for pair in ALL_PAIRS if pair in LEGAL])
def test_every_legal_transition_moves_and_is_announced(start, target):
    seen: list[WorkerState] = []
    machine = machine_in(start, seen)
    machine.to(target)
    assert machine.current is target and machine.is_(target)
    assert seen == [*PATH_TO[start], target]


@pytest.mark.parametrize(("start", "target"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_every_illegal_transition_raises_and_changes_nothing(start, target):
    seen: list[WorkerState] = []
    machine = machine_in(start, seen)
    with pytest.raises(IllegalTransition, match=f"cannot go from {start.value} to {target.value}"):
        machine.to(target)
    assert machine.current is start
    assert seen == PATH_TO[start]  # no announcement of a move that did not happen


def test_a_new_machine_starts_new():
    machine = StateMachine()
    assert machine.current is S.NEW and machine.is_(S.NEW, S.READY) and not machine.is_(S.READY)


def test_concurrent_moves_to_one_state_let_exactly_one_through():
    machine = machine_in(S.READY)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def move(target: WorkerState) -> None:
        barrier.wait()
        try:
            machine.to(target)
            outcomes.append(target.value)
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=move, args=(S.DRAINING,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["draining"] + ["refused"] * 7
    assert machine.current is S.DRAINING
