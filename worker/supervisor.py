"""`npc-worker serve --devices ...`: one `npc-worker serve` child process per device, kept running.

For bare-metal nodes with several GPUs (in Kubernetes, one GPU per pod stays the way: the kubelet restarts
containers and the device plugin hands out GPUs). Each child sees one GPU (CUDA_VISIBLE_DEVICES=N, device `cuda`),
has a stable consumer name `{host}:cudaN` (`{host}:cpuN` for the Nth cpu entry), so a restarted child re-reads its
own pending entries first, and serves HTTP on base port + N.

- A child that exits while no stop was asked is started again after a delay that doubles from 1 s up to 60 s,
  back to 1 s once a child has stayed up 60 s. A child that exits 2 (a configuration error: restarting cannot fix
  it) stops the whole supervisor with 2.
- SIGTERM/SIGINT are forwarded to every child: the first makes each drain (finish its job, hand back what it read
  ahead), a second makes them stop at once. Children run in their own sessions, so a Ctrl-C in a terminal reaches
  them only through the supervisor, once; on Linux they get SIGTERM if the supervisor itself dies.
- The supervisor exits when every child has exited: 0 when each drained cleanly (exit 0), else 1. A child that a
  forwarded SIGTERM/SIGINT ended by the signal itself had not yet taken its handlers over (worker.shutdown: the
  first thing a worker process does): it stopped before it started, with nothing in hand, which is clean too.
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
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
LONGEST_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0
POLL_S = 0.1
CONFIGURATION_EXIT = 2
PR_SET_PDEATHSIG = 1
GPU_LIST = re.compile(r"^\d+(,\d+)*$")
CPU_LIST = re.compile(r"^cpu(,cpu)*$")


class DevicesError(ValueError):
    """A --devices value that cannot be served here; the message says why and what to write instead."""


@dataclass(frozen=True)
class Slot:
    """One child: its label (cuda0, cpu1) and what its environment adds to the supervisor's."""

    label: str
    env: Mapping[str, str]


def plan_slots(
    spec: str,
    *,
    consumer_base: str,
    http_port: int,
    cuda_count: Callable[[], int],
    visible_devices: str | None,
) -> list[Slot]:
    """`all` (every visible CUDA device), `0,1,...` (those CUDA devices) or `cpu,cpu,...` (that many CPU workers)."""
    text = spec.replace(" ", "")
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
    elif CPU_LIST.match(text):
        return [
            _slot(f"cpu{n}", "cpu", n, consumer_base=consumer_base, http_port=http_port, gpu=None)
            for n in range(text.count("cpu"))
        ]
    else:
        raise DevicesError(
            f"--devices {spec!r} is not a device list; write all (every GPU), GPU numbers like 0,1,3, "
            "or cpu,cpu (one CPU worker per entry)"
        )
    mapping = [part.strip() for part in visible_devices.split(",")] if visible_devices else None
    return [
        _slot(
            f"cuda{n}",
            "cuda",
            n,
            consumer_base=consumer_base,
            http_port=http_port,
            gpu=mapping[n] if mapping else str(n),
        )
        for n in indices
    ]


def _slot(label: str, device: str, n: int, *, consumer_base: str, http_port: int, gpu: str | None) -> Slot:
    port = http_port + n if http_port else 0
    if port > 65535:
        raise DevicesError(f"HTTP port {http_port} + {n} is beyond 65535; choose a lower NPC_WORKER_HTTP_PORT")
    env = {
        "NPC_WORKER_DEVICE": device,
        "NPC_WORKER_CONSUMER": f"{consumer_base}:{label}",
        "NPC_WORKER_HTTP_PORT": str(port),
    }
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu  # the child sees this one GPU as cuda:0
    return Slot(label, env)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the supervisor dies, so no orphan keeps a GPU."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    slot: Slot
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    exit_code: int | None = None
    stopped_before_start: bool = False  # ended by a forwarded stop signal before it could handle it

    @property
    def running(self) -> bool:
        return self.process is not None


class Supervisor:
    def __init__(self, slots: Sequence[Slot], command: Sequence[str], env: Mapping[str, str]) -> None:
        self.children = [Child(slot) for slot in slots]
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
        clean = all(child.exit_code == 0 or child.stopped_before_start for child in self.children)
        log.info("all workers exited (%s)", ", ".join(f"{c.slot.label}: {c.exit_code}" for c in self.children))
        return 0 if clean else 1

    def _start(self, child: Child) -> None:
        env = {**self.env, **child.slot.env}
        child.process = subprocess.Popen(
            self.command,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 (no threads here)
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info(
            "started worker %s (pid %d, consumer %s, http port %s)",
            child.slot.label,
            child.process.pid,
            env["NPC_WORKER_CONSUMER"],
            env["NPC_WORKER_HTTP_PORT"],
        )

    def _reap(self, child: Child) -> None:
        if child.process is None:
            return
        code = child.process.poll()
        if code is None:
            return
        child.process = None
        child.exit_code = code
        uptime = time.monotonic() - child.started_at
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        if self.stopping:
            child.stopped_before_start = self._forwarded > 0 and -code in (signal.SIGTERM, signal.SIGINT)
            if child.stopped_before_start:
                how += ": stopped before it started, nothing in hand"
            log.info("worker %s exited (%s)", child.slot.label, how)
            return
        if code == CONFIGURATION_EXIT:
            log.error("worker %s refused its configuration (%s); stopping every worker", child.slot.label, how)
            self._configuration_error = True
            self._send_all(signal.SIGTERM)
            return
        if uptime >= STABLE_AFTER_S:
            child.backoff_s = FIRST_BACKOFF_S
        child.restart_at = time.monotonic() + child.backoff_s
        log.warning(
            "worker %s ended (%s) after %.0f s; starting it again in %.0f s",
            child.slot.label,
            how,
            uptime,
            child.backoff_s,
        )
        child.backoff_s = min(child.backoff_s * 2, LONGEST_BACKOFF_S)

    def _forward_signals(self) -> None:
        while self._forwarded < len(self._signals):
            signum = self._signals[self._forwarded]
            self._forwarded += 1
            log.info("%s: forwarding it to every worker", signal.Signals(signum).name)
            self._send_all(signum)

    def _send_all(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None:
                try:
                    child.process.send_signal(signum)
                except ProcessLookupError:  # exited a moment ago; reaped on the next pass
                    continue

    def _kill_leftovers(self) -> None:
        """Only reached with children alive when the supervisor itself fails: never leave one running."""
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                log.error("killing worker %s (pid %d)", child.slot.label, child.process.pid)
                child.process.kill()
                child.process.wait()


def visible_cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def supervise(devices: str, *, consumer: str | None, http_port: int, child_env: Mapping[str, str]) -> int:
    """Plan the children from --devices, start them and keep them running until a signal; the exit code.
    `child_env` holds the settings given as flags (as NPC_WORKER_* variables) and the log format, so every child
    runs with what the supervisor was given, NPC_WORKER_LOG_FORMAT=json included."""
    slots = plan_slots(
        devices,
        consumer_base=consumer or socket.gethostname(),
        http_port=http_port,
        cuda_count=visible_cuda_count,
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
    supervisor = Supervisor(slots, [sys.executable, "-m", "worker", "serve"], {**os.environ, **child_env})
    supervisor.install()
    return supervisor.run()
