"""Calling Redis through outages, restarts and failovers: retry with backoff until it answers again.

A worker never gives up on Redis on its own: a result waits for Redis to come back rather than being lost.
It stops waiting when a second signal asks for an immediate stop, and, where nothing would be lost (the loop
waiting for its next entry, start-up), as soon as a graceful stop is asked. Errors that mean "not now" (loading
its data after a restart, a read-only replica during a failover, a cluster re-sharding) are waited out like a
lost connection; a consumer group lost with Redis's data is created again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from worker.shutdown import ImmediateShutdown, ShutdownFlag

log = logging.getLogger(__name__)
T = TypeVar("T")
# Replies that mean "not now": redis-py turns some into their own classes (and strips the code from the message),
# the others are recognised by the code that starts the message.
TRANSIENT_ERRORS = (redis.exceptions.ReadOnlyError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)
TRANSIENT_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "UNBLOCKED")
FIRST_DELAY_S = 0.2
LONGEST_DELAY_S = 5.0


class StopWaiting(Exception):
    """A graceful stop was asked while waiting for Redis with nothing in hand to lose."""


def is_transient(exc: redis.ResponseError) -> bool:
    """A failover (a replica refusing writes, a blocked read unblocked by a role change), a restart still loading
    its data, a cluster moving slots: wait, do not fail."""
    return isinstance(exc, TRANSIENT_ERRORS) or str(exc).split(" ", 1)[0] in TRANSIENT_REPLIES


class RedisWaiter:
    """`on_recovered` is called when a call succeeds after Redis was unreachable (a restart, a failover)."""

    def __init__(
        self,
        shutdown: ShutdownFlag,
        beat: Callable[[], None],
        recreate_groups: Callable[[], None],
        on_recovered: Callable[[], None] | None = None,
    ):
        self.shutdown = shutdown
        self.beat = beat
        self.recreate_groups = recreate_groups
        self.on_recovered = on_recovered

    def call(self, operation: Callable[[], T], *, stop_on_request: bool = False) -> T:
        delay = FIRST_DELAY_S
        failed = False
        while True:
            try:
                value = operation()
                if failed and self.on_recovered is not None:
                    self.on_recovered()
                return value
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failed = True
                log.warning("redis unavailable (%s); retrying in %.1f s", exc, delay)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (redis lost its data?); creating it again")
                    self._recreate()
                    continue
                if not is_transient(exc):
                    raise
                failed = True
                log.warning("redis not ready (%s); retrying in %.1f s", exc, delay)
            self._pause(delay, stop_on_request)
            delay = min(delay * 2, LONGEST_DELAY_S)

    def _recreate(self) -> None:
        try:
            self.recreate_groups()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            log.warning("creating the consumer groups failed (%s); retrying", exc)
            self._pause(FIRST_DELAY_S, stop_on_request=False)

    def _pause(self, seconds: float, stop_on_request: bool) -> None:
        """Sleep in short slices: the heartbeat goes on (the loop is alive) and a signal is seen at once."""
        until = time.monotonic() + seconds
        while True:
            if self.shutdown.immediate:
                raise ImmediateShutdown
            if stop_on_request and self.shutdown.requested:
                raise StopWaiting
            self.beat()
            left = until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
