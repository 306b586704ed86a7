"""`npc-worker serve --devices`: the device plan, and a real supervisor with two CPU workers on one queue."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.streams import events, pending_count, runs
from tests.support.supervisor_process import SupervisorProcess
from tests.support.waiting import wait_until
from worker.supervisor import DevicesError, Slot, Supervisor, Unit, plan_units

TEXT_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ")


def plan(
    spec: str, gpus: int = 0, visible: str | None = None, http_port: int = 9000, group: int = 1
) -> list[dict[str, Any]]:
    """Every process of the plan, as its label and environment (with its unit's label)."""
    units = plan_units(
        spec, consumer_base="node-a", http_port=http_port, cuda_count=lambda: gpus, visible_devices=visible, group=group
    )
    return [
        {"label": slot.label, **slot.env} | ({"unit": unit.label} if group > 1 else {})
        for unit in units
        for slot in unit.slots
    ]


# -- the plan (no processes) ------------------------------------------------------------------------------


def test_all_gives_every_visible_gpu_its_own_worker_port_and_consumer():
    assert plan("all", gpus=2) == [
        {
            "label": "cuda0",
            "NPC_WORKER_DEVICE": "cuda",
            "NPC_WORKER_CONSUMER": "node-a:cuda0",
            "NPC_WORKER_HTTP_PORT": "9000",
            "CUDA_VISIBLE_DEVICES": "0",
        },
        {
            "label": "cuda1",
            "NPC_WORKER_DEVICE": "cuda",
            "NPC_WORKER_CONSUMER": "node-a:cuda1",
            "NPC_WORKER_HTTP_PORT": "9001",
            "CUDA_VISIBLE_DEVICES": "1",
        },
    ]


def test_gpu_numbers_follow_the_supervisors_own_cuda_visible_devices():
    slots = plan("1,3", gpus=4, visible="4,5,6,7")
    assert [(s["label"], s["CUDA_VISIBLE_DEVICES"], s["NPC_WORKER_HTTP_PORT"]) for s in slots] == [
        ("cuda1", "5", "9001"),
        ("cuda3", "7", "9003"),
    ]


def test_cpu_entries_are_numbered_and_need_no_gpu():
    slots = plan("cpu,cpu", gpus=0, http_port=0)
    assert [(s["label"], s["NPC_WORKER_CONSUMER"], s["NPC_WORKER_HTTP_PORT"]) for s in slots] == [
        ("cpu0", "node-a:cpu0", "0"),
        ("cpu1", "node-a:cpu1", "0"),
    ]
    assert all("CUDA_VISIBLE_DEVICES" not in s and s["NPC_WORKER_DEVICE"] == "cpu" for s in slots)


@pytest.mark.parametrize(
    ("spec", "gpus", "message"),
    [
        ("all", 0, "no CUDA device is visible"),
        ("0,2", 2, "no CUDA device 2 here (visible: 0..1)"),
        ("0,0", 2, "a GPU is listed twice"),
        ("gpu0", 1, "is not a device list"),
        ("0,cpu", 1, "is not a device list"),
        ("", 1, "is not a device list"),
    ],
)
def test_impossible_device_lists_are_refused_with_the_reason(spec, gpus, message):
    with pytest.raises(DevicesError, match=re.escape(message)):
        plan(spec, gpus=gpus)


def test_ports_beyond_the_last_are_refused():
    with pytest.raises(DevicesError, match="beyond 65535"):
        plan("cpu,cpu", http_port=65535)


def test_groups_cut_the_devices_into_consumers_with_a_leader_each():
    processes = plan("all", gpus=4, group=2)
    assert [(p["unit"], p["label"], p["CUDA_VISIBLE_DEVICES"], p["NPC_WORKER_GROUP_RANK"]) for p in processes] == [
        ("group0", "group0-rank0", "0", "0"),
        ("group0", "group0-rank1", "1", "1"),
        ("group1", "group1-rank0", "2", "0"),
        ("group1", "group1-rank1", "3", "1"),
    ]
    assert {p["NPC_WORKER_GROUP_SIZE"] for p in processes} == {"2"}
    assert [(p["NPC_WORKER_CONSUMER"], p["NPC_WORKER_HTTP_PORT"]) for p in processes] == [
        ("node-a:group0", "9000"),  # the leader consumes and serves HTTP
        ("node-a:group0", "0"),
        ("node-a:group1", "9001"),
        ("node-a:group1", "0"),
    ]
    cpu = plan("cpu,cpu", group=2)
    assert [(p["label"], p["NPC_WORKER_DEVICE"]) for p in cpu] == [("group0-rank0", "cpu"), ("group0-rank1", "cpu")]


@pytest.mark.parametrize(("spec", "gpus", "group"), [("all", 6, 4), ("cpu,cpu,cpu", 0, 2), ("0", 1, 0)])
def test_a_group_size_that_does_not_divide_the_devices_is_refused(spec, gpus, group):
    with pytest.raises(DevicesError, match="--group"):
        plan(spec, gpus=gpus, group=group)


# -- the supervisor loop, with stand-in children (small Python processes) ------------------------------------

# TEST_CHILD=crash exits 1 at once, =config exits 2 (a refused configuration), =drain waits for SIGTERM and exits 0
# a second later, or 1 when a second SIGTERM comes first (a worker's drain and immediate stop, in small),
# =importing sleeps with the default handlers (a worker still importing: a SIGTERM kills it by the signal),
# =crash-soon exits 1 after half a second (a group member that dies).
STAND_IN = """
import os, signal, sys, time
kind = os.environ["TEST_CHILD"]
if kind == "importing":
    time.sleep(30)
if kind == "crash-soon":
    time.sleep(0.5)
    sys.exit(1)
if kind != "drain":
    sys.exit(1 if kind == "crash" else 2)
seen = []
signal.signal(signal.SIGTERM, lambda *_: seen.append(time.monotonic()))
while len(seen) < 2 and not (seen and time.monotonic() - seen[0] > 1.0):
    time.sleep(0.02)
sys.exit(1 if len(seen) >= 2 else 0)
"""


def run_supervisor(
    kinds: dict[str, str], stop_after_s: float, signals: int = 1, stop_when: Callable[[], bool] | None = None
) -> int:
    """Children by label -> TEST_CHILD; `signals` SIGTERMs after `stop_after_s` (none when 0), or once `stop_when`
    holds (checked until 30 s)."""
    env = {"NPC_WORKER_HTTP_PORT": "0"}
    units = [
        Unit(label, (Slot(label, {**env, "TEST_CHILD": kind, "NPC_WORKER_CONSUMER": label}),))
        for label, kind in kinds.items()
    ]
    supervisor = Supervisor(units, [sys.executable, "-c", STAND_IN], dict(os.environ))
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(supervisor.run()))
    thread.start()
    if stop_when is not None:
        wait_until(stop_when, timeout_s=30, what="the supervisor's progress")
    else:
        time.sleep(stop_after_s)
    for _ in range(signals):
        supervisor.request_stop()
        time.sleep(0.3)
    thread.join(30)
    assert not thread.is_alive(), "the supervisor did not exit"
    return codes[0]


def test_a_crashing_child_is_started_again_with_doubling_delays(caplog):
    caplog.set_level(logging.INFO, logger="worker.supervisor")

    def crashed_three_times() -> bool:
        return sum("starting it again" in r.getMessage() for r in caplog.records) >= 3

    # stopped once its third crash was seen (started at 0 s, 1 s and 3 s): its last exit was not a clean drain
    assert run_supervisor({"cpu0": "crash"}, stop_after_s=0, stop_when=crashed_three_times) == 1
    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "starting it again" in r.getMessage()]
    assert delays[:3] == ["1 s", "2 s", "4 s"]
    assert sum("started worker cpu0" in r.getMessage() for r in caplog.records) == 3  # at 0 s, 1 s and 3 s


def test_one_signal_drains_every_child_and_exits_0_a_second_stops_them_at_once():
    assert run_supervisor({"cpu0": "drain", "cpu1": "drain"}, stop_after_s=0.5) == 0
    assert run_supervisor({"cpu0": "drain", "cpu1": "drain"}, stop_after_s=0.5, signals=2) == 1


def test_a_child_stopped_by_the_signal_while_still_importing_counts_as_clean(caplog):
    caplog.set_level(logging.INFO, logger="worker.supervisor")
    assert run_supervisor({"cpu0": "importing", "cpu1": "drain"}, stop_after_s=0.5) == 0
    assert any("cpu0 exited (signal SIGTERM: stopped before it started" in r.getMessage() for r in caplog.records)


def test_a_group_whose_member_dies_is_ended_and_started_again_whole(caplog):
    caplog.set_level(logging.INFO, logger="worker.supervisor")
    env = {"NPC_WORKER_HTTP_PORT": "0", "NPC_WORKER_CONSUMER": "group0"}
    members = (
        Slot("group0-rank0", {**env, "TEST_CHILD": "drain"}),
        Slot("group0-rank1", {**env, "TEST_CHILD": "crash-soon"}),
    )
    supervisor = Supervisor([Unit("group0", members)], [sys.executable, "-c", STAND_IN], dict(os.environ))
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    wait_until(
        lambda: sum("started worker group0-rank0" in r.getMessage() for r in caplog.records) >= 2,
        timeout_s=30,
        what="the group started again",
    )
    supervisor.request_stop()
    thread.join(30)
    assert not thread.is_alive()
    messages = [r.getMessage() for r in caplog.records]
    assert any("ending the rest of group0 to start it again whole" in m for m in messages)
    assert any("group0-rank1 ended (exit code 1)" in m for m in messages)


def test_a_child_refusing_its_configuration_stops_all_with_2(caplog):
    caplog.set_level(logging.INFO, logger="worker.supervisor")
    assert run_supervisor({"cpu0": "config", "cpu1": "drain"}, stop_after_s=0, signals=0) == 2
    assert any("cpu0 refused its configuration" in r.getMessage() for r in caplog.records)


# -- a real supervisor ------------------------------------------------------------------------------------


@pytest.fixture
def supervise(tmp_path: Path, catalog_path: Path, redis_server: Any) -> Iterator[Callable[..., SupervisorProcess]]:
    started: list[SupervisorProcess] = []

    def start(devices: str, count: int, **overrides: Any) -> SupervisorProcess:
        settings = {
            "catalog": catalog_path,
            "storage_url": f"file://{tmp_path / 'outputs'}",
            "redis_url": redis_server.url,
            "block_ms": 200,
            "progress_interval_ms": 0,
            **overrides,
        }
        process = SupervisorProcess(tmp_path, devices, count, **settings)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def test_two_cpu_workers_restart_after_kill_9_recover_their_entry_and_drain_on_sigterm(
    supervise, producer, redis_client, names
):
    # Take-over by the other worker needs 20 s of silence; the restarted one recovers its entry long before.
    supervisor = supervise("cpu,cpu", 2, claim_idle_ms=20_000, log_format="json")
    supervisor.wait_ready()
    for index in range(6):
        producer.submit(envelope(f"warm-{index}", seed=index, width=32, height=32, steps=1))
    for index in range(6):
        assert producer.wait(f"warm-{index}", timeout_s=120).status == JobStatus.COMPLETED
    consumers = {e["worker"] for e in events(redis_client, names) if e["type"] == "job:completed"}
    assert consumers == {"sup:cpu0", "sup:cpu1"}  # both consume the one queue

    producer.submit(envelope("long", steps=40, width=64, height=64, duration=2.0))
    started = wait_until(lambda: runs(redis_client, names, "long"), what="the long job started")
    victim = started[0][0]
    before = supervisor.children()
    assert set(before) == {"sup:cpu0", "sup:cpu1"}
    os.kill(before[victim], signal.SIGKILL)
    wait_until(
        lambda: supervisor.children().get(victim, before[victim]) != before[victim],
        timeout_s=30,
        what="the supervisor started the killed worker again",
    )
    label = victim.split(":")[-1]
    index = int(label.removeprefix("cpu"))
    wait_until(lambda: supervisor.ready(index), timeout_s=180, interval_s=0.2, what="the restarted worker ready")
    result = producer.wait("long", timeout_s=180)
    assert result.status == JobStatus.COMPLETED
    assert runs(redis_client, names, "long") == [(victim, 1), (victim, 2)]  # its own entry, run again by itself
    completed = [e for e in events(redis_client, names, "long") if e["type"] == "job:completed"]
    assert len(completed) == 1 and completed[0]["worker"] == victim

    workers = supervisor.children()
    assert set(workers) == {"sup:cpu0", "sup:cpu1"}
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit() == 0, supervisor.log()[-3000:]
    assert not [pid for pid in workers.values() if Path(f"/proc/{pid}").exists()]  # every worker exited
    assert pending_count(redis_client, names) == 0
    log = supervisor.log()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    messages = [record["message"] for record in records]
    assert any("recovered 1 pending entries of consumer " + victim in message for message in messages)
    assert any(f"worker {label} ended (signal SIGKILL)" in message for message in messages)
    assert {m.split()[1] for m in messages if m.startswith("worker sup:cpu") and " ready on " in m} == {
        "sup:cpu0",
        "sup:cpu1",
    }
    assert not [line for line in log.splitlines() if TEXT_LOG_LINE.match(line)]  # children log JSON too
