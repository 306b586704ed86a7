"""Guarded http(s) fetches against a real local server: what is refused (and why), what is allowed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from npc_video_client.contract import ErrorCode, JobStatus
from npc_video_client.errors import JobError
from tests.support.image_server import Route, serve_images
from tests.support.jobs import data_uri, envelope, png_bytes
from worker.fetch import fetch_remote
from worker.fetch.http import host_allowed
from worker.images import read_image_source
from worker.settings import Settings

PNG = png_bytes()
PRIVATE_OK = {"allow_private_networks": True}


def fetch(url: str, **settings: object) -> bytes:
    return read_image_source(url, Settings(**settings), trusted=False)


def refused(url: str, **settings: object) -> str:
    with pytest.raises(JobError) as failure:
        fetch(url, **settings)
    assert failure.value.code == ErrorCode.INVALID_IMAGE and not failure.value.retryable
    assert url[:60] in failure.value.message, "the message must name the URL"
    return failure.value.message


# -- allowed ------------------------------------------------------------------------------------------------
def test_fetches_the_image_from_a_private_server_when_allowed(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    assert fetch(image_server.url("/npc.png?v=2"), **PRIVATE_OK) == PNG
    assert [(seen.path, seen.host) for seen in image_server.requests] == [
        ("/npc.png?v=2", f"127.0.0.1:{image_server.port}")
    ]


def test_connects_to_the_checked_address_and_sends_the_name_as_host(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    assert fetch(image_server.url("/npc.png", host="localhost"), **PRIVATE_OK) == PNG
    assert image_server.requests[-1].host == f"localhost:{image_server.port}"


def test_body_without_length_is_read_to_the_end(image_server):
    image_server.routes["/npc.png"] = Route(PNG, send_length=False)
    assert fetch(image_server.url("/npc.png"), **PRIVATE_OK) == PNG


def test_up_to_three_redirects_are_followed(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    image_server.routes["/r1"] = Route(status=302, headers={"Location": "/r2"})
    image_server.routes["/r2"] = Route(status=301, headers={"Location": image_server.url("/r3", host="localhost")})
    image_server.routes["/r3"] = Route(status=307, headers={"Location": "npc.png"})
    assert fetch(image_server.url("/r1"), **PRIVATE_OK) == PNG
    assert [seen.path for seen in image_server.requests] == ["/r1", "/r2", "/r3", "/npc.png"]


def test_a_job_runs_end_to_end_from_an_http_base_image(make_runner, image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    runner = make_runner(allow_private_networks=True)
    from_data = runner.run(envelope("data", npc_base_image=data_uri(PNG)))
    from_http = runner.run(envelope("http", npc_base_image=image_server.url("/npc.png")))
    assert from_http.status == JobStatus.COMPLETED, from_http.error_message
    assert from_http.storage_key == from_data.storage_key, "same bytes, same request: same content-addressed key"
    assert from_http.cache_hit
    assert len(image_server.requests) == 1


def test_downloads_are_cached_per_url_and_per_guard_settings(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    url = image_server.url("/npc.png")
    assert fetch_remote(url, Settings(**PRIVATE_OK)) == fetch_remote(url, Settings(**PRIVATE_OK)) == PNG
    assert len(image_server.requests) == 1
    refused(url)  # a cached download never bypasses a stricter guard
    assert len(image_server.requests) == 1


# -- refused ------------------------------------------------------------------------------------------------
def test_loopback_is_refused_without_allow_private_networks_and_never_contacted(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    message = refused(image_server.url("/npc.png"))
    assert "loopback" in message and "NPC_WORKER_ALLOW_PRIVATE_NETWORKS" in message
    assert image_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/npc.png",
        "http://2130706433/npc.png",
        "http://0x7f000001/npc.png",
        "http://[::1]/npc.png",
        "http://[::ffff:127.0.0.1]/npc.png",
        "http://10.0.0.1/npc.png",
        "http://100.64.0.1/npc.png",
    ],
)
def test_private_hosts_in_any_spelling_are_refused(url):
    message = refused(url)
    assert "which is" in message and "only globally routable addresses" in message


def test_cloud_metadata_is_refused_even_with_allow_private_networks():
    started = time.monotonic()
    message = refused("http://169.254.169.254/latest/meta-data/iam/", **PRIVATE_OK)
    assert "link-local" in message and "metadata" in message
    assert time.monotonic() - started < 1, "refused before connecting"


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/npc.png", "unspecified"),
        ("file:///etc/passwd", 'scheme "file"'),
        ("gopher://127.0.0.1:70/_", 'scheme "gopher"'),
    ],
)
def test_every_redirect_hop_is_checked_again(image_server, location, rule):
    image_server.routes["/go"] = Route(status=302, headers={"Location": location})
    message = refused(image_server.url("/go"), **PRIVATE_OK)
    assert rule in message and f"redirect 1 to {location}" in message


def test_a_redirect_leaving_the_host_allowlist_is_refused(image_server):
    image_server.routes["/npc.png"] = Route(PNG)
    image_server.routes["/go"] = Route(status=302, headers={"Location": image_server.url("/npc.png", "localhost")})
    allow = {"allow_private_networks": True, "fetch_allowed_hosts": ["127.0.0.1"]}
    assert fetch(image_server.url("/npc.png"), **allow) == PNG
    message = refused(image_server.url("/go"), **allow)
    assert '"localhost" is not in NPC_WORKER_FETCH_ALLOWED_HOSTS' in message
    assert [seen.path for seen in image_server.requests] == ["/npc.png", "/go"]


def test_more_than_three_redirects_are_refused(image_server):
    for hop in range(5):
        image_server.routes[f"/r{hop}"] = Route(status=302, headers={"Location": f"/r{hop + 1}"})
    assert "more than 3" in refused(image_server.url("/r0"), **PRIVATE_OK)
    assert len(image_server.requests) == 4


@pytest.mark.parametrize("url", ["ftp://example.com/npc.png", "gopher://example.com/npc.png", "sftp://host/x.png"])
def test_other_schemes_are_refused(url):
    assert "not supported" in refused(url)


def test_local_files_outside_the_input_roots_are_refused(tmp_path):
    image = tmp_path / "elsewhere" / "npc.png"
    image.parent.mkdir()
    image.write_bytes(PNG)
    (tmp_path / "inputs").mkdir()
    assert "outside the allowed input roots" in refused(f"file://{image}", input_roots=[tmp_path / "inputs"])
    assert "outside the allowed input roots" in refused("file:///etc/passwd", input_roots=[tmp_path / "inputs"])


def test_host_allowlist_matches_names_and_subdomain_wildcards():
    allowed = ["cdn.example.com", "*.assets.example.net"]
    assert host_allowed("cdn.example.com", allowed)
    assert host_allowed("eu.assets.example.net", allowed)
    assert not host_allowed("assets.example.net", allowed)
    assert not host_allowed("evilcdn.example.com", allowed)
    assert not host_allowed("cdn.example.com.evil.org", allowed)
    assert host_allowed("anything.org", [])


def test_a_host_outside_the_allowlist_is_refused_before_resolving():
    message = refused("http://images.example.org/npc.png", fetch_allowed_hosts=["cdn.example.com"])
    assert "not in NPC_WORKER_FETCH_ALLOWED_HOSTS (cdn.example.com)" in message


def test_declared_oversize_is_refused(image_server):
    image_server.routes["/big.png"] = Route(PNG)
    message = refused(image_server.url("/big.png"), max_image_bytes=len(PNG) - 1, **PRIVATE_OK)
    assert f"{len(PNG)} bytes, over the limit of {len(PNG) - 1}" in message


def test_undeclared_oversize_is_cut_off_while_streaming(image_server):
    image_server.routes["/big.png"] = Route(b"x" * 500_000, send_length=False)
    assert "larger than the limit of 1000 bytes" in refused(
        image_server.url("/big.png"), max_image_bytes=1000, **PRIVATE_OK
    )


@pytest.mark.parametrize(("content_type", "shown"), [("text/html; charset=utf-8", '"text/html"'), (None, "missing")])
def test_a_non_image_content_type_is_refused(image_server, content_type, shown):
    image_server.routes["/page"] = Route(b"<html></html>", content_type=content_type)
    assert f"Content-Type is {shown}" in refused(image_server.url("/page"), **PRIVATE_OK)


def test_an_error_status_is_refused(image_server):
    assert "HTTP 404" in refused(image_server.url("/missing.png"), **PRIVATE_OK)


@pytest.mark.parametrize(
    "route", [Route(PNG, stall_s=3), Route(PNG * 10, drip_s=0.05)], ids=["stalls-before-answering", "drips-the-body"]
)
def test_a_slow_server_is_cut_off_at_the_fetch_timeout(image_server, route):
    image_server.routes["/slow.png"] = route
    started = time.monotonic()
    message = refused(image_server.url("/slow.png"), fetch_timeout_s=0.5, **PRIVATE_OK)
    assert "took longer than 0.5 s" in message
    assert time.monotonic() - started < 1.5


def test_a_refused_image_fails_the_job_without_retry(make_runner):
    result = make_runner().run(envelope("ssrf", npc_base_image="http://169.254.169.254/latest/meta-data/"))
    assert result.status == JobStatus.FAILED and result.error_code == ErrorCode.INVALID_IMAGE
    assert "169.254.169.254" in (result.error_message or "")


# -- https: verified against the URL's host name while connected to the checked address ----------------------
def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    certificate, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


@pytest.fixture
def localhost_tls(tmp_path):
    return self_signed(tmp_path, "localhost")


def test_https_verifies_the_certificate_against_the_host_name(localhost_tls, monkeypatch):
    with serve_images(localhost_tls) as server:
        server.routes["/npc.png"] = Route(PNG)
        message = refused(server.url("/npc.png", "localhost"), **PRIVATE_OK)
        assert 'TLS certificate of "localhost" does not verify' in message and "certificate verify failed" in message
        monkeypatch.setenv("SSL_CERT_FILE", str(localhost_tls[0]))  # trust the test certificate
        assert fetch(server.url("/npc.png", "localhost"), **PRIVATE_OK) == PNG
        assert server.requests[-1].host == f"localhost:{server.port}"


def test_https_refuses_a_certificate_for_another_name(tmp_path, monkeypatch):
    other = self_signed(tmp_path, "other.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(other[0]))
    with serve_images(other) as server:
        server.routes["/npc.png"] = Route(PNG)
        message = refused(server.url("/npc.png", "localhost"), **PRIVATE_OK)
        assert 'TLS certificate of "localhost" does not verify' in message and "doesn't match 'other.test'" in message
