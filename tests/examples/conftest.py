"""The examples run against a real redis-server (`redis_server`: tests/support/redis_fixtures.py, a plugin for every
test folder) and, where a case needs one, a real worker: the fixtures of tests/worker/conftest.py."""

from tests.worker.conftest import redis_client, start_worker

__all__ = ["redis_client", "start_worker"]
