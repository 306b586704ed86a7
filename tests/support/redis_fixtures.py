"""Real-redis-server fixtures for test folders outside tests/worker (whose conftest has its own): import them into
a conftest.py, e.g. `from tests.support.redis_fixtures import redis_server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, on a free loopback port."""
    server = RedisServer(tmp_path / "redis", persistent=False)
    server.start()
    yield server
    server.stop()
