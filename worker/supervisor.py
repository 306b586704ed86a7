"""`npc-worker serve --devices ...`: `npc-worker serve` child processes over the devices, kept running.

For bare-metal nodes with several GPUs (in Kubernetes, one pod per worker or per worker group: the kubelet restarts
containers and the device plugin hands out GPUs). The devices are cut into units of `--group` devices (1 by
default), each unit one consumer of the queue:
- a unit of one device is one worker: it sees one GPU (CUDA_VISIBLE_DEVICES=N, device `cuda`), has a stable consumer
  name `{host}:cudaN` (`{host}:cpuN` for the Nth cpu entry), so a restarted worker re-reads its own pending entries
  first, and serves HTTP on base port + N;
- a unit of several devices is a worker group (worker.group): one process per device, rank 0 the leader with the
  consumer name `{host}:groupG` and HTTP on base port + G, the others its followers (no HTTP); they meet at a fresh
  rendezvous port each time the group starts, and one job's sequence is split over all of them.

- A unit that ends while no stop was asked is started again, as a whole, after a delay that doubles from 1 s up to
  60 s, back to 1 s once it has stayed up 60 s. When one process of a group ends, the others are killed first: a
  group without one of its members cannot run a job. A process that exits 2 (a configuration error: restarting
  cannot fix it) stops the whole supervisor with 2.
- SIGTERM/SIGINT are forwarded to every process: the first makes each worker drain (finish its job, hand back what
  it read ahead; a group's followers wait for their leader to end them), a second makes them stop at once.
  Children run in their own sessions, so a Ctrl-C in a terminal reaches them only through the supervisor, once; on
  Linux they get SIGTERM if the supervisor itself dies.
- The supervisor exits when every process has exited: 0 when each ended cleanly (exit 0), else 1. A process that a
  forwarded SIGTERM/SIGINT ended by the signal itself had not yet taken its handlers over (worker.shutdown: the first
  thing a worker process does): it stopped before it started, with nothing in hand, which is clean too.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
LONGEST_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0
POLL_S = 0.1
FOLLOWERS_GRACE_S = 30.0  # a group's followers end this long after their leader at the latest
CONFIGURATION_EXIT = 2
PR_SET_PDEATHSIG = 1
GPU_LIST = re.compile(r"^\d+(,\d+)*$")
CPU_LIST = re.compile(r"^cpu(,cpu)*$")


class DevicesError(ValueError):
    """A --devices (or --group) value that cannot be served here; the message says why and what to write instead."""


@dataclass(frozen=True)
class Slot:
    """One process: its label (cuda0, group0-rank1) and what its environment adds to the supervisor's."""

    label: str
    env: Mapping[str, str]


@dataclass(frozen=True)
class Unit:
    """What lives and restarts as one: a worker (one slot) or a worker group (one slot per rank, rank 0 first)."""

    label: str
    slots: tuple[Slot, ...]

    @property
    def is_group(self) -> bool:
        return len(self.slots) > 1


def plan_units(
    spec: str,
    *,
    consumer_base: str,
    http_port: int,
    cuda_count: Callable[[], int],
    visible_devices: str | None,
    group: int = 1,
) -> list[Unit]:
    """`all` (every visible CUDA device), `0,1,...` (those CUDA devices) or `cpu,cpu,...` (that many CPU workers),
    cut into units of `group` devices."""
    devices = _devices(spec, cuda_count=cuda_count, visible_devices=visible_devices)
    if group < 1:
        raise DevicesError(f"--group {group}: a group has at least one device")
    if len(devices) % group:
        raise DevicesError(
            f"--devices {spec} gives {len(devices)} device(s), which --group {group} does not divide; list a "
            f"multiple of {group} devices, or choose a group size that divides {len(devices)}"
        )
    units = []
    for index in range(len(devices) // group):
        members = devices[index * group : (index + 1) * group]
        if group == 1:
            kind, n, gpu = members[0]
            label = f"{kind}{n}"
            units.append(
                Unit(label, (_slot(label, kind, gpu, consumer=f"{consumer_base}:{label}", port=_port(http_port, n)),))
            )
            continue
        label = f"group{index}"
        consumer = f"{consumer_base}:{label}"
        slots = []
        for rank, (kind, _n, gpu) in enumerate(members):
            slot = _slot(
                f"{label}-rank{rank}", kind, gpu, consumer=consumer, port=_port(http_port, index) if rank == 0 else 0
            )
            env = {**slot.env, "NPC_WORKER_GROUP_SIZE": str(group), "NPC_WORKER_GROUP_RANK": str(rank)}
            slots.append(Slot(slot.label, env))
        units.append(Unit(label, tuple(slots)))
    return units


def _devices(
    spec: str, *, cuda_count: Callable[[], int], visible_devices: str | None
) -> list[tuple[str, int, str | None]]:
    """(kind, n, the GPU to make visible) of every device the spec names."""
    text = spec.replace(" ", "")
    if CPU_LIST.match(text):
        return [("cpu", n, None) for n in range(text.count("cpu"))]
    if text == "all":
        count = cuda_count()
        if count == 0:
            raise DevicesError(
                "--devices all: no CUDA device is visible (torch.cuda.device_count() is 0; check the driver with "
                "nvidia-smi and CUDA_VISIBLE_DEVICES); for CPU workers write --devices cpu,cpu"
            )
        indices = list(range(count))
    elif GPU_LIST.match(text):
        indices = [int(part) for part in text.split(",")]
        if len(set(indices)) != len(indices):
            raise DevicesError(f"--devices {spec}: a GPU is listed twice; one worker per GPU")
        count = cuda_count()
        missing = [index for index in indices if index >= count]
        if missing:
            seen = f"0..{count - 1}" if count else "none"
            raise DevicesError(f"--devices {spec}: no CUDA device {missing[0]} here (visible: {seen})")
    else:
        raise DevicesError(
            f"--devices {spec!r} is not a device list; write all (every GPU), GPU numbers like 0,1,3, "
            "or cpu,cpu (one CPU worker per entry)"
        )
    mapping = [part.strip() for part in visible_devices.split(",")] if visible_devices else None
    return [("cuda", n, mapping[n] if mapping else str(n)) for n in indices]


def _port(http_port: int, n: int) -> int:
    port = http_port + n if http_port else 0
    if port > 65535:
        raise DevicesError(f"HTTP port {http_port} + {n} is beyond 65535; choose a lower NPC_WORKER_HTTP_PORT")
    return port


def _slot(label: str, device: str, gpu: str | None, *, consumer: str, port: int) -> Slot:
    env = {"NPC_WORKER_DEVICE": device, "NPC_WORKER_CONSUMER": consumer, "NPC_WORKER_HTTP_PORT": str(port)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu  # the process sees this one GPU as cuda:0
    return Slot(label, env)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the supervisor dies, so no orphan keeps a GPU."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def rendezvous_port() -> int:
    """A free loopback port for a group's members to meet at (fresh at every start of the group)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Running:
    """One started unit: its processes (None once reaped) and how each ended."""

    unit: Unit
    processes: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    exit_codes: list[int | None] = field(default_factory=list)
    clean_exits: list[bool] = field(default_factory=list)  # exit 0, or stopped by a forwarded signal before start
    leader_ended_at: float | None = None

    @property
    def running(self) -> bool:
        return any(process is not None for process in self.processes)

    @property
    def clean(self) -> bool:
        return bool(self.clean_exits) and all(self.clean_exits)


class Supervisor:
    def __init__(self, units: Sequence[Unit], command: Sequence[str], env: Mapping[str, str]) -> None:
        self.children = [Running(unit) for unit in units]
        self.command = list(command)
        self.env = dict(env)
        self._signals: list[int] = []
        self._forwarded = 0
        self._configuration_error = False

    def install(self) -> None:
        """Handlers only record the signal; the loop forwards it."""
        signal.signal(signal.SIGTERM, self._record)
        signal.signal(signal.SIGINT, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self._signals.append(signum)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._signals.append(signum)

    @property
    def stopping(self) -> bool:
        return bool(self._signals) or self._configuration_error

    def run(self) -> int:
        try:
            for child in self.children:
                self._start(child)
            while not (self.stopping and not any(child.running for child in self.children)):
                self._forward_signals()
                for child in self.children:
                    self._reap(child)
                    if child.restart_at is not None and not self.stopping and time.monotonic() >= child.restart_at:
                        self._start(child)
                time.sleep(POLL_S)
        finally:
            self._kill_leftovers()
        if self._configuration_error:
            return CONFIGURATION_EXIT
        log.info("all workers exited (%s)", ", ".join(f"{c.unit.label}: {c.exit_codes}" for c in self.children))
        return 0 if all(child.clean for child in self.children) else 1

    def _start(self, child: Running) -> None:
        unit = child.unit
        shared = {"NPC_WORKER_GROUP_ADDRESS": f"127.0.0.1:{rendezvous_port()}"} if unit.is_group else {}
        child.processes, child.exit_codes, child.clean_exits = [], [], []
        for slot in unit.slots:
            env = {**self.env, **slot.env, **shared}
            process = subprocess.Popen(
                self.command,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 (no threads here)
            )
            child.processes.append(process)
            child.exit_codes.append(None)
            child.clean_exits.append(False)
            log.info(
                "started worker %s (pid %d, consumer %s, http port %s)",
                slot.label,
                process.pid,
                env["NPC_WORKER_CONSUMER"],
                env["NPC_WORKER_HTTP_PORT"],
            )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.leader_ended_at = None

    def _reap(self, child: Running) -> None:
        ended = []
        for index, process in enumerate(child.processes):
            if process is None or (code := process.poll()) is None:
                continue
            child.processes[index] = None
            child.exit_codes[index] = code
            ended.append((index, code))
        if not ended:
            self._end_followers_of_an_ended_leader(child)
            return
        for index, code in ended:
            self._ended(child, index, code)

    def _ended(self, child: Running, index: int, code: int) -> None:
        label = child.unit.slots[index].label
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        child.clean_exits[index] = code == 0
        if self.stopping:
            if self._forwarded > 0 and -code in (signal.SIGTERM, signal.SIGINT):
                child.clean_exits[index] = True
                how += ": stopped before it started, nothing in hand"
            if index == 0:
                child.leader_ended_at = time.monotonic()
            log.info("worker %s exited (%s)", label, how)
            return
        if code == CONFIGURATION_EXIT:
            log.error("worker %s refused its configuration (%s); stopping every worker", label, how)
            self._configuration_error = True
            self._send_all(signal.SIGTERM)
            return
        if child.running:  # a group cannot go on without one of its members
            log.warning(
                "worker %s ended (%s); ending the rest of %s to start it again whole", label, how, child.unit.label
            )
            self._kill(child)
        uptime = time.monotonic() - child.started_at
        if uptime >= STABLE_AFTER_S:
            child.backoff_s = FIRST_BACKOFF_S
        child.restart_at = time.monotonic() + child.backoff_s
        log.warning(
            "worker %s ended (%s) after %.0f s; starting it again in %.0f s", label, how, uptime, child.backoff_s
        )
        child.backoff_s = min(child.backoff_s * 2, LONGEST_BACKOFF_S)

    def _end_followers_of_an_ended_leader(self, child: Running) -> None:
        """While stopping: a group's leader ends its followers itself; should one outlive it, it is killed."""
        ended_at = child.leader_ended_at
        if ended_at is not None and child.running and time.monotonic() - ended_at > FOLLOWERS_GRACE_S:
            log.warning(
                "followers of %s outlived their leader by %.0f s; killing them", child.unit.label, FOLLOWERS_GRACE_S
            )
            self._kill(child)

    def _kill(self, child: Running) -> None:
        for index, process in enumerate(child.processes):
            if process is None:
                continue
            process.kill()
            child.exit_codes[index] = process.wait()
            child.processes[index] = None

    def _forward_signals(self) -> None:
        while self._forwarded < len(self._signals):
            signum = self._signals[self._forwarded]
            self._forwarded += 1
            log.info("%s: forwarding it to every worker", signal.Signals(signum).name)
            self._send_all(signum)

    def _send_all(self, signum: int) -> None:
        for child in self.children:
            for process in child.processes:
                if process is None:
                    continue
                try:
                    process.send_signal(signum)
                except ProcessLookupError:  # exited a moment ago; reaped on the next pass
                    continue

    def _kill_leftovers(self) -> None:
        """Only reached with children alive when the supervisor itself fails: never leave one running."""
        for child in self.children:
            for process in child.processes:
                if process is not None and process.poll() is None:
                    log.error("killing worker %s (pid %d)", child.unit.label, process.pid)
                    process.kill()
                    process.wait()


def visible_cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def supervise(
    devices: str, *, consumer: str | None, http_port: int, child_env: Mapping[str, str], group: int = 1
) -> int:
    """Plan the units from --devices and --group, start them and keep them running until a signal; the exit code.
    `child_env` holds the settings given as flags (as NPC_WORKER_* variables) and the log format, so every child
    runs with what the supervisor was given, NPC_WORKER_LOG_FORMAT=json included."""
    units = plan_units(
        devices,
        consumer_base=consumer or socket.gethostname(),
        http_port=http_port,
        cuda_count=visible_cuda_count,
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        group=group,
    )
    supervisor = Supervisor(units, [sys.executable, "-m", "worker", "serve"], {**os.environ, **child_env})
    supervisor.install()
    return supervisor.run()
