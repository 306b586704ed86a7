"""A Redis client tuned for a long-lived stream consumer.

Blocking reads (XREADGROUP BLOCK) must not trip the socket timeout, so the timeout is the block time plus a
margin; TCP keepalive and periodic health checks make a dead connection fail loudly instead of hanging.
"""

from __future__ import annotations

import redis

SOCKET_MARGIN_S = 10.0


def connect(url: str, block_ms: int = 2_000) -> redis.Redis:
    """redis://, rediss:// (TLS) and passwords in the URL all work; responses stay bytes."""
    return redis.Redis.from_url(
        url,
        socket_timeout=block_ms / 1000 + SOCKET_MARGIN_S,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=15,
        retry_on_timeout=False,
        client_name="npc-worker",
    )
