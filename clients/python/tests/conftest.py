"""The client's tests run against a real redis-server: `redis_server` comes from tests/support/redis_fixtures.py,
loaded for every test folder as a pytest plugin (pyproject.toml)."""
