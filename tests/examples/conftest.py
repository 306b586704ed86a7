"""The examples run against a real redis-server and, where a case needs one, a real worker: the fixtures of
tests/worker/conftest.py."""

from tests.worker.conftest import redis_client, redis_server, start_worker

__all__ = ["redis_client", "redis_server", "start_worker"]
