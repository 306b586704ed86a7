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
TRANSIENT_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS")
FIRST_DELAY_S = 0.2
LONGEST_DELAY_S = 5.0


class StopWaiting(Exception):
    """A graceful stop was asked while waiting for Redis with nothing in hand to lose."""


def is_transient(exc: redis.ResponseError) -> bool:
    return str(exc).split(" ", 1)[0] in TRANSIENT_REPLIES


class RedisWaiter:
    def __init__(self, shutdown: ShutdownFlag, beat: Callable[[], None], recreate_groups: Callable[[], None]):
        self.shutdown = shutdown
        self.beat = beat
        self.recreate_groups = recreate_groups

    def call(self, operation: Callable[[], T], *, stop_on_request: bool = False) -> T:
        delay = FIRST_DELAY_S
        while True:
            try:
                return operation()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("redis unavailable (%s); retrying in %.1f s", exc, delay)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (redis lost its data?); creating it again")
                    self._recreate()
                    continue
                if not is_transient(exc):
                    raise
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
