"""pixsim7/backend/main/infrastructure/redis: get_redis(), pixsim7's process-wide asyncio client, made as pixsim7
makes it (decode_responses=True: every reply is a str)."""

from __future__ import annotations

import redis.asyncio as redis

from pixsim7.backend.main.shared.config import settings

_redis_client: redis.Redis | None = None


async def get_redis() -> redis.Redis:
    global _redis_client  # noqa: PLW0603  (pixsim7's singleton, as written there)
    if _redis_client is None:
        _redis_client = redis.from_url(
            settings.redis_url,
            encoding="utf-8",
            decode_responses=True,
            socket_keepalive=True,
            health_check_interval=30,
            retry_on_timeout=True,
        )
    return _redis_client


async def close_redis() -> None:
    global _redis_client  # noqa: PLW0603
    if _redis_client is not None:
        await _redis_client.aclose()
        _redis_client = None
