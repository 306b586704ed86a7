"""S3Storage against a real S3 server (SeaweedFS): uploads, URLs, cache hits, outages, configuration errors."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from npc_video_client.contract import RETRYABLE_CODES, ErrorCode, JobStatus
from npc_video_client.errors import JobError
from tests.support.jobs import envelope
from tests.support.seaweed import SeaweedServer
from tests.support.video import decode_mp4
from worker.settings import Settings
from worker.storage import StorageConfigError, open_storage
from worker.storage.s3 import S3Storage

pytestmark = pytest.mark.usefixtures("s3_env")


def s3_storage(server: SeaweedServer, prefix: str, **settings: object) -> S3Storage:
    storage = open_storage(
        Settings(storage_url=f"s3://{server.bucket}/{prefix}", s3_endpoint_url=server.endpoint, **settings)
    )
    assert isinstance(storage, S3Storage)
    return storage


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


def test_put_stores_bytes_type_and_checksum_under_the_prefix(seaweed, payload):
    storage = s3_storage(seaweed, "put-test/v1")
    assert not storage.exists("npc-1/ab/abc.mp4")
    storage.put("npc-1/ab/abc.mp4", payload, "video/mp4")
    assert storage.exists("npc-1/ab/abc.mp4")
    head = seaweed.client().head_object(
        Bucket=seaweed.bucket, Key="put-test/v1/npc-1/ab/abc.mp4", ChecksumMode="ENABLED"
    )
    assert head["ContentType"] == "video/mp4"
    assert head["ContentLength"] == payload.stat().st_size
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(payload.read_bytes()).digest()).decode()


def test_presigned_url_serves_the_same_bytes_and_is_required(seaweed, payload):
    storage = s3_storage(seaweed, "presign-test", presign_ttl_s=120)
    storage.put("k/clip.mp4", payload, "video/mp4")
    url = storage.url("k/clip.mp4")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=120" in url
    assert http_get(url) == payload.read_bytes()
    with pytest.raises(urllib.error.HTTPError) as refused:  # the bucket is private: the signature is what opens it
        http_get(url.split("?")[0])
    assert refused.value.code == 403


def test_public_base_url_is_used_verbatim_and_serves_the_object(seaweed, payload):
    storage = s3_storage(seaweed, "public-test", public_base_url=seaweed.public_base_url + "/")
    storage.put("npc 1/clip.mp4", payload, "video/mp4")
    url = storage.url("npc 1/clip.mp4")
    assert url == f"{seaweed.public_base_url}/public-test/npc%201/clip.mp4"
    assert http_get(url) == payload.read_bytes()


def test_job_stores_video_and_thumbnail_with_content_types(make_runner, seaweed, tmp_path):
    runner = make_runner(storage_url=f"s3://{seaweed.bucket}/jobs", s3_endpoint_url=seaweed.endpoint)
    result = runner.run(envelope("s3-job", fps=8))
    assert result.status == JobStatus.COMPLETED, result.error_message
    client = seaweed.client()
    video = client.get_object(Bucket=seaweed.bucket, Key=f"jobs/{result.storage_key}")
    assert video["ContentType"] == "video/mp4"
    stored = video["Body"].read()
    assert http_get(result.url) == stored
    local = tmp_path / "downloaded.mp4"
    local.write_bytes(stored)
    assert decode_mp4(local)[1].shape[0] == result.num_frames
    thumbnail_key = f"jobs/{result.storage_key.removesuffix('.mp4')}.jpg"
    thumbnail = client.get_object(Bucket=seaweed.bucket, Key=thumbnail_key)
    assert thumbnail["ContentType"] == "image/jpeg"
    assert http_get(result.thumbnail_url) == thumbnail["Body"].read()[:]


def test_same_job_again_is_a_cache_hit_that_uploads_nothing(make_runner, seaweed):
    runner = make_runner(storage_url=f"s3://{seaweed.bucket}/dedupe", s3_endpoint_url=seaweed.endpoint)
    first = runner.run(envelope("first"))
    assert first.status == JobStatus.COMPLETED and not first.cache_hit, first.error_message
    key = f"dedupe/{first.storage_key}"
    seaweed.client().put_object(Bucket=seaweed.bucket, Key=key, Body=b"sentinel", ContentType="video/mp4")
    second = runner.run(envelope("second"))
    assert second.cache_hit and second.storage_key == first.storage_key
    assert second.timings.upload_ms == 0 and second.timings.generate_ms == 0
    body = seaweed.client().get_object(Bucket=seaweed.bucket, Key=key)["Body"].read()
    assert body == b"sentinel", "a cache hit must not upload the video again"


class StopServerAtFirstStep:
    """Job hooks that take the S3 server down while the job is on the device."""

    def __init__(self, server: SeaweedServer) -> None:
        self.server = server

    def progress(self, step: int, total_steps: int) -> None:
        self.server.stop()

    def cancel_requested(self) -> bool:
        return False


@pytest.fixture
def own_seaweed(tmp_path: Path):
    server = SeaweedServer(tmp_path / "seaweed", bucket="outage")
    server.start()
    yield server
    server.stop()


def test_outage_mid_run_fails_retryable_fast_and_the_retry_completes(make_runner, own_seaweed):
    runner = make_runner(storage_url=f"s3://{own_seaweed.bucket}/out", s3_endpoint_url=own_seaweed.endpoint)
    started = time.monotonic()
    failed = runner.run(envelope("outage"), StopServerAtFirstStep(own_seaweed))
    assert time.monotonic() - started < 30
    assert failed.status == JobStatus.FAILED
    assert failed.error_code == ErrorCode.STORAGE_ERROR and failed.error_code in RETRYABLE_CODES
    assert f"s3://{own_seaweed.bucket}/out/" in (failed.error_message or "")

    own_seaweed.start()
    client = own_seaweed.client()
    assert client.list_objects_v2(Bucket=own_seaweed.bucket, Prefix="out/").get("KeyCount", 0) == 0
    assert not client.list_multipart_uploads(Bucket=own_seaweed.bucket).get("Uploads")
    retried = runner.run(envelope("outage"))
    assert retried.status == JobStatus.COMPLETED, retried.error_message
    assert not retried.cache_hit
    assert http_get(retried.url)[4:8] == b"ftyp"


def test_unreachable_endpoint_is_a_storage_error_within_seconds(payload):
    settings = Settings(storage_url="s3://npc-videos/x", s3_endpoint_url="http://127.0.0.1:9")
    storage = open_storage(settings)
    started = time.monotonic()
    with pytest.raises(JobError) as failure:
        storage.put("a/b.mp4", payload, "video/mp4")
    assert time.monotonic() - started < 10
    assert failure.value.code == ErrorCode.STORAGE_ERROR and failure.value.retryable
    assert "s3://npc-videos/x/a/b.mp4" in failure.value.message


def test_wrong_credentials_are_a_storage_error_not_a_miss(seaweed, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    storage = s3_storage(seaweed, "creds")
    with pytest.raises(JobError) as failure:
        storage.exists("a.mp4")
    assert failure.value.code == ErrorCode.STORAGE_ERROR
    assert "s3://npc-videos/creds/a.mp4" in failure.value.message and "credentials" in failure.value.message


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://Upper_Case/videos",
        "s3://ab/too-short-bucket",
        "s3://bucket:9000/port",
        "s3://key:secret@bucket/credentials",
        "s3://bucket/a/../escape",
        "s3://bucket/query?x=1",
        "gs://bucket/other-cloud",
    ],
)
def test_bad_storage_urls_are_refused_at_start(url):
    with pytest.raises(StorageConfigError, match="storage URL"):
        open_storage(Settings(storage_url=url))
