"""`rediss://` as docs/deploy.md writes it: a redis-server that speaks TLS only, its certificate checked against
a CA given by `ssl_ca_certs` in the URL; a whole job through a real worker and the producer client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme

from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.redis_server import RedisServer, ServerTls
from tests.support.serving import fast_settings, serving


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RedisServer]:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    files = ServerTls(cert=tmp_path / "server.pem", key=tmp_path / "server.key", ca=tmp_path / "ca.pem")
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    authority.cert_pem.write_to_path(str(files.ca))
    server = RedisServer(tmp_path / "redis", tls=files)
    server.start()
    yield server
    server.stop()


def test_a_job_runs_through_a_tls_only_redis(tls_server, tmp_path, catalog_path):
    assert tls_server.url.startswith("rediss://")
    producer = NpcVideoClient(tls_server.url)
    with serving(fast_settings(tmp_path, catalog_path, redis_url=tls_server.url)) as worker:
        producer.submit(envelope("tls-1", steps=2))
        result = producer.wait("tls-1", timeout_s=120, poll_s=0.1)
        assert result.status == JobStatus.COMPLETED, result
        assert worker.service.readyz()[0]
        assert worker.stop() == 0


def test_a_certificate_from_another_authority_is_refused(tls_server, tmp_path):
    stranger = tmp_path / "stranger-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    client = redis.Redis.from_url(f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={stranger}")
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()
