"""Exit codes of every command, and the one-line errors that replace tracebacks for what operators run into.

0 ok; 1 the job failed, was cancelled or expired; 2 usage or configuration; 3 infrastructure down (Redis or the
object store unreachable); 4 timeout (or, for `status`, not finished yet). README.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer

if TYPE_CHECKING:
    from worker.settings import Settings


class ExitCode(IntEnum):
    OK = 0
    JOB_NOT_COMPLETED = 1  # failed, cancelled or expired
    USAGE = 2  # usage or configuration
    INFRASTRUCTURE = 3  # Redis or the object store unreachable
    TIMEOUT = 4  # did not finish in time; `status`: not finished yet


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """One line on stderr, then exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(code))


def redact(url: str) -> str:
    """A URL without its password (error lines end up in logs and tickets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def describe_redis(settings: Settings) -> str:
    if settings.redis_sentinels:
        return f"Redis master {settings.redis_sentinel_master!r} via sentinels {','.join(settings.redis_sentinels)}"
    if settings.redis_cluster:
        return f"Redis Cluster at {redact(settings.redis_url)}"
    return f"Redis at {redact(settings.redis_url)}"


@contextmanager
def redis_errors(settings: Settings) -> Iterator[None]:
    """Redis failures of a client command as one line: credentials, ACL and a cluster node addressed as a single
    server are configuration (2); anything else means Redis is down or unreachable (3)."""
    import redis
    from redis.exceptions import AuthenticationError, NoPermissionError, RedisClusterException

    where = describe_redis(settings)
    try:
        yield
    except AuthenticationError as exc:
        fail(f"{where} refused the credentials: {exc} (user and password go in NPC_WORKER_REDIS_URL)")
    except NoPermissionError as exc:
        fail(f"{where}: the ACL user may not run this: {exc} (docs/deploy.md, 'ACL user', lists the commands)")
    except (redis.ConnectionError, redis.TimeoutError, RedisClusterException) as exc:
        fail(f"{where} is unreachable: {exc}", ExitCode.INFRASTRUCTURE)
    except redis.ResponseError as exc:
        if str(exc).startswith("MOVED"):
            fail(f"{where} is a Redis Cluster node ({exc}); set NPC_WORKER_REDIS_CLUSTER=1 and a prefix like {{npc}}")
        fail(f"{where} answered with an error: {exc}", ExitCode.INFRASTRUCTURE)
