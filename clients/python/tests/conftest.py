"""The client's tests run against a real redis-server (tests/support)."""

from tests.support.redis_fixtures import redis_server

__all__ = ["redis_server"]
