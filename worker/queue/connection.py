"""A Redis client tuned for a long-lived stream consumer, for the three ways operators run Redis.

Blocking reads (XREADGROUP BLOCK) must not trip the socket timeout, so the timeout is the block time plus a
margin; TCP keepalive and periodic health checks make a dead connection fail loudly instead of hanging.

- One server (`NPC_WORKER_REDIS_URL`): `redis://` or `rediss://` (TLS), user and password in the URL.
- Redis Cluster (`NPC_WORKER_REDIS_CLUSTER=1`): redis-py's cluster client, which follows MOVED/ASK redirections and
  slot migrations. Every script and multi-stream read of the worker touches keys of one prefix only, so a prefix
  with a hash tag (`{npc}`) keeps each of them in one slot (settings refuse a cluster prefix without one). Its
  pipelines refuse EVALSHA and PUBLISH: `run_scripts` and the event writer send those one by one there.
- Redis Sentinel (`NPC_WORKER_REDIS_SENTINELS` + `_SENTINEL_MASTER`): connections ask the sentinels for the
  master's address whenever they (re)connect; after a failover the old master's READONLY reply or a dropped
  connection makes the next connection find the new master (worker.queue.waiting retries meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import SSLConnection, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

if TYPE_CHECKING:
    from worker.settings import Settings

SOCKET_MARGIN_S = 10.0
CONNECT_TIMEOUT_S = 5.0
HEALTH_CHECK_INTERVAL_S = 15
CLIENT_NAME = "npc-worker"
SENTINEL_RETRIES = 10
ScriptCall = tuple[Script, Sequence[Any], Sequence[Any]]  # (script, keys, args)


def _options(block_ms: int) -> dict[str, Any]:
    return {
        "socket_timeout": block_ms / 1000 + SOCKET_MARGIN_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry_on_timeout": False,
        "client_name": CLIENT_NAME,
    }


def connect(url: str, block_ms: int = 2_000) -> redis.Redis:
    """One Redis server: redis://, rediss:// (TLS) and passwords in the URL all work; responses stay bytes."""
    return redis.Redis.from_url(url, **_options(block_ms))


def open_redis(settings: Settings) -> redis.Redis:
    """The client the settings describe: one server, a cluster or a sentinel-managed master.

    The cluster client offers every command the worker uses under the same names; it is typed as redis.Redis so
    the queue modules stay written against one interface (`is_cluster` tells them apart where redis-py differs).
    """
    if settings.redis_cluster:
        return cast("redis.Redis", RedisCluster.from_url(settings.redis_url, **_options(settings.block_ms)))
    if settings.redis_sentinels:
        return _sentinel_master(settings, settings.block_ms)
    return connect(settings.redis_url, settings.block_ms)


class RediscoveringConnection(SentinelManagedConnection):
    """A sentinel-managed connection that asks the sentinels for the master before every (re)connect.

    redis-py's own one does so only when the pool hands out a connection; a command retried after the failover cut
    it off reconnects to the old address and meets the demoted master again (redis/redis-py#3874, open in 8.1).
    """

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock is None and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class RediscoveringSSLConnection(RediscoveringConnection, SSLConnection):
    """The same over TLS (`rediss://`)."""


def _sentinel_master(settings: Settings, block_ms: int) -> redis.Redis:
    """The URL gives the master connections their user, password, db and TLS options; the sentinels give the
    address. TLS (`rediss://`) applies to the sentinels too; they may have their own password."""
    url_options: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    for unused in ("host", "port", "path"):
        url_options.pop(unused, None)
    tls = url_options.pop("connection_class", None) is SSLConnection
    tls_options = {key: value for key, value in url_options.items() if key.startswith("ssl_")}
    # Clients from_url retry a failed command on a new connection by default; master_for's pools do not. A command
    # cut off by the failover is tried again once the sentinels name the new master (up to ~10 s).
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=SENTINEL_RETRIES)
    connection_class = RediscoveringSSLConnection if tls else RediscoveringConnection
    master_options = {**_options(block_ms), **url_options, "connection_class": connection_class, "retry": retry}
    sentinel_options: dict[str, Any] = {
        "socket_timeout": CONNECT_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "retry": Retry(NoBackoff(), retries=0),  # a sentinel that does not answer: ask the next one at once
        "ssl": tls,
        **tls_options,
    }
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    master_name = settings.redis_sentinel_master
    assert master_name, "Settings refuses NPC_WORKER_REDIS_SENTINELS without NPC_WORKER_REDIS_SENTINEL_MASTER"
    addresses = [_address(text) for text in settings.redis_sentinels]
    sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_options)
    master: redis.Redis = sentinel.master_for(master_name, **master_options)
    return master


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def run_scripts(client: redis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run several scripts, one round trip on a single server (a non-transactional pipeline). redis-py's cluster
    pipelines refuse EVALSHA, so a cluster client runs them one after another. Each reply is the script's result
    or the exception it raised, as `pipeline.execute(raise_on_error=False)` gives them."""
    if not is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for script, keys, args in calls:
            script(keys=keys, args=args, client=pipe)
        return list(pipe.execute(raise_on_error=False))
    replies: list[Any] = []
    for script, keys, args in calls:
        try:
            replies.append(script(keys=keys, args=args))
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies
