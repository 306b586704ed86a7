"""What the clients raise on purpose: one typed exception per situation a producer handles, each with a one-line
message for people (no traceback of redis internals, no Python reprs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import redis


class NpcVideoClientError(Exception):
    """Base of every error the clients raise on purpose."""


class RedisUnavailable(NpcVideoClientError, redis.ConnectionError):
    """Redis cannot be reached (refused, timed out, loading, a failover in progress). A `redis.ConnectionError` too,
    so code written against redis-py keeps catching it."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = " ".join(reason.split()) or "no reason given"
        super().__init__(f"{where} is unreachable: {self.reason}")


class UnknownJob(NpcVideoClientError, LookupError):
    """No state and no result for this job id: never submitted (by a 1.2 client), or both expired."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id} is unknown: no state and no result (never submitted, submitted by a client older than "
            "contract 1.2 and not started yet, or its state and result expired)"
        )


class JobAlreadyEnded(NpcVideoClientError):
    """Submitting a job id whose result is stored: the worker never runs an ended job id again."""

    def __init__(self, job_id: str, status: str) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"job {job_id} already ended ({status}); the worker never runs an ended job id again: submit under a new "
            "job id"
        )


def describe(client: Any) -> str:
    """`Redis at redis://user:***@host:port/db` (or the socket path) from a client's connection settings; the password
    is never shown. A client without one connection pool (a cluster) is named by its kind."""
    pool = getattr(client, "connection_pool", None)
    settings: dict[str, Any] = getattr(pool, "connection_kwargs", None) or {}
    if not settings:
        return f"Redis ({type(client).__name__})"
    if settings.get("path"):
        return f"Redis at unix://{settings['path']}"
    credentials = ""
    if settings.get("username") or settings.get("password"):
        credentials = f"{quote(str(settings.get('username') or ''))}:***@"
    scheme = "rediss" if "SSL" in getattr(pool, "connection_class", type(None)).__name__ else "redis"
    host, port, db = settings.get("host", "localhost"), settings.get("port", 6379), settings.get("db", 0)
    return f"Redis at {scheme}://{credentials}{host}:{port}/{db}"


@contextmanager
def reachable(client: Any) -> Iterator[None]:
    """Turn redis-py's connection failures into RedisUnavailable. Refused credentials (`AuthenticationError`, a
    `ConnectionError` in redis-py) are a configuration problem, not an outage: they pass unchanged."""
    try:
        yield
    except RedisUnavailable:
        raise
    except redis.AuthenticationError:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(describe(client), str(exc)) from exc
