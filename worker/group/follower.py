"""A follower of a worker group (rank 1 and up): it holds its share of the group's work and nothing else.

It joins the group, loads the default model as the leader does, then runs what the leader sends: each pipeline call
in lockstep (worker.model_runner.ModelRunner.follow), until the leader dismisses it. It owns no queue, storage,
events or HTTP. A broken group (a member gone or hung) ends it with 1, and the supervisor starts the group again;
signals are the leader's to act on (a follower ends when its leader does, and the supervisor kills one that
outlives its leader).
"""

from __future__ import annotations

import logging

from worker.group.lockstep import Channel, Dismiss, FollowerCall, GroupFailure
from worker.group.membership import join_with, leave
from worker.runtime import build_runtime
from worker.settings import Settings

log = logging.getLogger(__name__)


def follow(settings: Settings) -> int:
    """Run as a follower until dismissed (0) or the group breaks (1)."""
    membership, catalog = join_with(settings)
    channel = Channel(membership)
    try:
        runtime = build_runtime(settings, group=channel, catalog=catalog)
        runtime.pool.get(runtime.catalog.defaults.model)
        channel.ready(settings.group_start_timeout_s)
        log.info("follower %d of %d ready", membership.rank, membership.size)
        while True:
            command = channel.receive()
            if isinstance(command, Dismiss):
                log.info("dismissed by the leader")
                return 0
            if isinstance(command, FollowerCall):
                runtime.models.follow(command)
    except GroupFailure as exc:
        log.error("%s; ending, so that the group starts again whole", exc)
        return 1
    finally:
        leave()
