"""Lockstep: the group's members run every pipeline call together, decided by the leader.

For each call the leader broadcasts a `FollowerCall` (the model, the resolved request, the start frame) before it
loads the model, so the followers load it at the same time; at the end of every denoising step it broadcasts whether
the call goes on, so a cancel, a deadline, a preemption or a stop ends every rank at the same step; after the call
all meet at a barrier, which tells a job's own failure (every rank got past the call) from a broken group (one did
not answer within `group_timeout_s`: `GroupFailure`). While idle it pings the followers, whose waits would otherwise
time out, and at the end it dismisses them. Only the leader decodes: the followers stop at the latents.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from PIL.Image import Image

from pipelines.request import ResolvedRequest
from worker.group.membership import Membership

log = logging.getLogger(__name__)
PING_FRACTION = 0.25  # ping after a quarter of the collective timeout without a command


class GroupFailure(BaseException):
    """A member of the group is gone or hung: the group cannot run jobs and must be started again whole. A
    BaseException, so no job's failure boundary turns it into a failed job: the job is retried after the restart."""


class FollowerStop(Exception):
    """The leader ended the call at this step (its job was cancelled, expired, preempted or failed there)."""


@dataclass(frozen=True)
class FollowerCall:
    """One pipeline call, as every rank runs it."""

    model: str
    request: ResolvedRequest
    image: Image
    image_sha256: str


@dataclass(frozen=True)
class Ping:
    """Nothing to run yet; the leader is alive."""


@dataclass(frozen=True)
class Dismiss:
    """The leader stops: the followers end too."""


Command = FollowerCall | Ping | Dismiss


def _failure(what: str, exc: BaseException) -> GroupFailure:
    return GroupFailure(f"worker group: {what} failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


class Channel:
    """The control traffic of one member (both sides): commands, step decisions, barriers."""

    def __init__(self, membership: Membership) -> None:
        self.membership = membership
        self._last_sent = time.monotonic()

    def send(self, command: Command) -> None:
        """Leader: broadcast a command."""
        self._broadcast_object(command)
        self._last_sent = time.monotonic()

    def receive(self) -> Command:
        """Follower: the leader's next command (GroupFailure when it does not come within the timeout)."""
        command = self._broadcast_object(None)
        if not isinstance(command, FollowerCall | Ping | Dismiss):
            raise GroupFailure(f"worker group: the leader sent {type(command).__name__}, not a command")
        return command

    def decide(self, stop: bool) -> bool:
        """Both sides, at every step's end: the leader's decision (`stop` is the leader's; followers pass False)."""
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if stop else 0], dtype=torch.int32)
        try:
            dist.broadcast(flag, src=0, group=self.membership.control)
        except (RuntimeError, dist.DistError) as exc:
            raise _failure("the step decision", exc) from exc
        self._last_sent = time.monotonic()
        return bool(flag.item())

    def resync(self) -> None:
        """Both sides, after every call: all members got past it (else the group is broken)."""
        self._barrier("the barrier after a call", self.membership.timeout_s)

    def ready(self, timeout_s: float) -> None:
        """Both sides, at start: every member has loaded the default model (loads can take minutes)."""
        self._barrier("the start", timeout_s)

    def _barrier(self, what: str, timeout_s: float) -> None:
        import torch.distributed as dist

        try:
            dist.monitored_barrier(group=self.membership.control, timeout=timedelta(seconds=timeout_s))
        except (RuntimeError, dist.DistError) as exc:
            raise _failure(what, exc) from exc
        self._last_sent = time.monotonic()

    def ping_when_idle(self) -> None:
        """Leader, while no job runs: keep the followers' waits from timing out."""
        if time.monotonic() - self._last_sent >= self.membership.timeout_s * PING_FRACTION:
            self.send(Ping())

    def _broadcast_object(self, value: Any) -> Any:
        import torch.distributed as dist

        holder = [value]
        try:
            dist.broadcast_object_list(holder, src=0, group=self.membership.control)
        except (RuntimeError, dist.DistError) as exc:
            raise _failure("a command", exc) from exc
        return holder[0]
