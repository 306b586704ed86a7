"""Which Redis client the settings make, and the settings that choose it (no server needed for these)."""

from __future__ import annotations

import os

import pytest
import redis
from pydantic import ValidationError

from worker.queue.connection import RediscoveringConnection, RediscoveringSSLConnection, is_cluster, open_redis
from worker.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("NPC_WORKER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("prefix", ["npc", "{npc}", "game{npc}", "{npc}.v2", "a_b-c.d"])
def test_prefixes_with_at_most_one_hash_tag_are_accepted(prefix):
    assert Settings(prefix=prefix).prefix == prefix


@pytest.mark.parametrize("prefix", ["", "{}", "{a}{b}", "npc}", "{npc", "a b", "npc:x"])
def test_other_prefixes_are_refused(prefix):
    with pytest.raises(ValidationError, match="prefix"):
        Settings(prefix=prefix)


def test_a_cluster_needs_a_hash_tagged_prefix_and_says_how():
    with pytest.raises(ValidationError, match=r"has no hash tag.*set NPC_WORKER_PREFIX=\{npc\}"):
        Settings(redis_cluster=True)
    assert Settings(redis_cluster=True, prefix="{npc}").redis_cluster


def test_sentinel_settings_come_as_a_comma_separated_list_with_a_master_name(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_REDIS_SENTINELS", " 10.0.0.5:26379, sentinel-b.internal:26380,[::1]:26381 ")
    monkeypatch.setenv("NPC_WORKER_REDIS_SENTINEL_MASTER", "npc-primary")
    settings = Settings()
    assert settings.redis_sentinels == ["10.0.0.5:26379", "sentinel-b.internal:26380", "[::1]:26381"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis_sentinels": ["10.0.0.5"], "redis_sentinel_master": "m"}, "must be host:port"),
        ({"redis_sentinels": ["h:70000"], "redis_sentinel_master": "m"}, "must be host:port"),
        ({"redis_sentinels": ["h:26379"]}, "NPC_WORKER_REDIS_SENTINEL_MASTER is not"),
        ({"redis_sentinel_master": "m"}, "NPC_WORKER_REDIS_SENTINELS is empty"),
        ({"redis_sentinels": ["h:1"], "redis_sentinel_master": "m", "redis_cluster": True, "prefix": "{n}"}, "both"),
    ],
)
def test_inconsistent_topologies_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_a_single_server_keeps_todays_client():
    client = open_redis(Settings(redis_url="redis://u:p@127.0.0.1:6390/3"))
    assert type(client) is redis.Redis and not is_cluster(client)
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_sentinel_masters_take_credentials_db_and_tls_from_the_url():
    settings = Settings(
        redis_url="rediss://npc-worker:secret@ignored:1/2?ssl_ca_certs=/etc/npc/tls/ca.pem",
        redis_sentinels=["127.0.0.1:26379", "127.0.0.1:26380"],
        redis_sentinel_master="npc-primary",
        redis_sentinel_password="sentinel-secret",
    )
    client = open_redis(settings)  # nothing connects until the first command
    pool = client.connection_pool
    assert pool.connection_class is RediscoveringSSLConnection and pool.service_name == "npc-primary"
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("npc-worker", "secret", 2)
    assert kwargs["ssl_ca_certs"] == "/etc/npc/tls/ca.pem" and kwargs["client_name"] == "npc-worker"
    assert "host" not in kwargs and kwargs["retry"].get_retries() == 10
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "sentinel-secret"
    assert sentinels[0].connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/npc/tls/ca.pem"
    assert sentinels[0].connection_pool.connection_kwargs["retry"].get_retries() == 0  # next sentinel at once


def test_plain_sentinel_masters_use_plain_connections():
    client = open_redis(Settings(redis_sentinels=["127.0.0.1:26379"], redis_sentinel_master="m"))
    assert client.connection_pool.connection_class is RediscoveringConnection
