"""The relay's fixtures: a pub/sub subscriber and relays running in threads (tests/worker/conftest.py gives the
real redis-server and workers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from npc_video_client.names import StreamNames
from tests.support.redis_server import RedisServer
from tests.worker.relay.support import CHANNEL, Subscriber
from worker.relay import Pixsim7Events, Pixsim7Format, Relay, RelayOptions
from worker.shutdown import ShutdownFlag


@pytest.fixture
def subscribe(redis_server: RedisServer) -> Iterator[Callable[..., Subscriber]]:
    opened: list[Subscriber] = []

    def open_one(channel: str = CHANNEL) -> Subscriber:
        subscriber = Subscriber(redis_server.url, channel)
        opened.append(subscriber)
        return subscriber

    yield open_one
    for subscriber in opened:
        subscriber.close()


@dataclass
class RunningRelay:
    relay: Relay
    shutdown: ShutdownFlag
    thread: threading.Thread
    errors: list[BaseException]

    def stop(self) -> None:
        self.shutdown.request()
        self.thread.join(30)
        assert not self.thread.is_alive(), "relay did not stop"
        assert self.errors == []


@pytest.fixture
def start_relay(redis_server: RedisServer) -> Iterator[Callable[..., RunningRelay]]:
    """`start_relay(publisher=None, events=ALL, progress_interval_ms=0, **options)`: a relay in a thread on the test
    Redis, with the pixsim7 format (every event, unthrottled, unless told otherwise: these tests are about relaying)."""
    running: list[RunningRelay] = []

    def start(**overrides: Any) -> RunningRelay:
        values: dict[str, Any] = {"channel": CHANNEL, "group": "relay-pixsim7", "consumer": "relay", "block_ms": 100}
        publisher = overrides.pop("publisher", None)
        relay_format = Pixsim7Format(
            events=overrides.pop("events", Pixsim7Events.ALL),
            progress_interval_ms=overrides.pop("progress_interval_ms", 0),
        )
        values.update(overrides)
        shutdown = ShutdownFlag()
        client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
        options = RelayOptions(**values)
        relay = Relay(client, StreamNames("npc"), relay_format, options, shutdown=shutdown, publisher=publisher)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                relay.run()
            except BaseException as exc:  # handed to the test, which fails on it
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        handle = RunningRelay(relay, shutdown, thread, errors)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.stop()
