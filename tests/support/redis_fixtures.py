"""Real-redis-server fixtures for every test folder: pyproject.toml loads this module as a pytest plugin
(`-p tests.support.redis_fixtures`), so no conftest.py imports them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, on a free loopback port, with AOF (a restart keeps its data)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
