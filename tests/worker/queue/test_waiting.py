"""worker.queue.waiting against a real redis-server: outages, restarts, lost groups, failovers and stop requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from npc_video_client.names import Lane
from tests.support.redis_processes import free_port
from tests.support.redis_server import RedisServer
from worker.queue.leases import Leases
from worker.queue.waiting import RedisWaiter, StopWaiting
from worker.shutdown import ImmediateShutdown, ShutdownFlag


class Beats:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], object]], None]]:
    """Run an action on a timer thread (a restart, a signal) while the test waits in the foreground."""
    timers: list[threading.Timer] = []

    def schedule(delay_s: float, action: Callable[[], object]) -> None:
        timer = threading.Timer(delay_s, action)
        timers.append(timer)
        timer.start()

    yield schedule
    for timer in timers:
        timer.join(30)


def make_waiter(shutdown: ShutdownFlag | None = None, recreate: Callable[[], None] | None = None):
    beats = Beats()
    waiter = RedisWaiter(shutdown or ShutdownFlag(), beats, recreate or (lambda: None))
    return waiter, beats


def test_an_operation_waits_through_a_redis_restart(redis_server: RedisServer, redis_client, later):
    redis_client.set("kept", "yes")
    waiter, beats = make_waiter()
    redis_server.stop()
    later(0.8, redis_server.start)
    started = time.monotonic()
    assert waiter.call(lambda: redis_client.get("kept")) == b"yes"
    assert time.monotonic() - started >= 0.7
    assert beats.count >= 5  # the heartbeat went on while it waited


def test_a_lost_consumer_group_is_created_again(redis_client, names):
    leases = Leases(redis_client, names, "c1", 60_000)
    created: list[int] = []

    def recreate() -> None:
        created.append(1)
        leases.ensure_groups()

    waiter, _beats = make_waiter(recreate=recreate)
    redis_client.xadd(names.lane("normal"), {"job": "after data loss"})  # the stream exists, its group does not
    got = waiter.call(lambda: leases.read_new([Lane.NORMAL], count=1, block_ms=None))
    assert created == [1]
    assert [lease.payload for lease in got] == [b"after data loss"]


def test_a_graceful_stop_ends_the_wait_only_when_asked(redis_server: RedisServer, redis_client, later):
    shutdown = ShutdownFlag()
    waiter, _beats = make_waiter(shutdown)
    redis_server.stop()
    shutdown.request()
    started = time.monotonic()
    with pytest.raises(StopWaiting):
        waiter.call(redis_client.ping, stop_on_request=True)
    assert time.monotonic() - started < 1.0
    later(0.6, redis_server.start)  # a result in hand is never dropped: this call waits for Redis
    assert waiter.call(redis_client.ping) is True


def test_a_second_signal_stops_any_wait_at_once(redis_server: RedisServer, redis_client, later):
    shutdown = ShutdownFlag()
    waiter, _beats = make_waiter(shutdown)
    redis_server.stop()
    shutdown.request()
    later(0.4, shutdown.request)
    started = time.monotonic()
    with pytest.raises(ImmediateShutdown):
        waiter.call(redis_client.ping)
    assert time.monotonic() - started < 2.0


def test_other_errors_are_raised_at_once(redis_client):
    waiter, beats = make_waiter()
    redis_client.set("text", "not a list")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        waiter.call(lambda: redis_client.lpush("text", 1))
    assert beats.count == 0


@pytest.mark.parametrize(
    ("reply", "operation"),
    [
        pytest.param("READONLY", lambda client: client.xadd("jobs", {"a": 1}), id="READONLY"),
        pytest.param("MASTERDOWN", lambda client: client.xrange("jobs"), id="MASTERDOWN"),
    ],
)
def test_a_replica_during_a_failover_is_waited_out(redis_client, later, reply, operation):
    """A real replica: writes get READONLY; with replica-serve-stale-data off, reads get MASTERDOWN."""
    redis_client.config_set("replica-serve-stale-data", "no" if reply == "MASTERDOWN" else "yes")
    redis_client.replicaof("127.0.0.1", free_port())  # a master that never answers: this server is a replica now
    with pytest.raises(redis.ResponseError) as refused:
        operation(redis_client)
    assert refused.value.status_code == reply  # the reply is real, not simulated
    promote = redis.Redis(port=redis_client.connection_pool.connection_kwargs["port"])
    later(0.6, lambda: promote.replicaof("NO", "ONE"))  # the failover completes
    waiter, _beats = make_waiter()
    waiter.call(lambda: operation(redis_client))


def test_a_blocked_read_unblocked_by_a_failover_is_waited_out(redis_client, names, later):
    leases = Leases(redis_client, names, "c1", 60_000)
    leases.ensure_groups()
    admin = redis.Redis(port=redis_client.connection_pool.connection_kwargs["port"])
    later(0.3, lambda: admin.replicaof("127.0.0.1", free_port()))  # demoted while the worker blocks on it
    later(0.9, lambda: admin.replicaof("NO", "ONE"))  # and promoted again
    waiter, _beats = make_waiter()
    assert waiter.call(lambda: leases.read_new([Lane.NORMAL], count=1, block_ms=2_000)) == []
