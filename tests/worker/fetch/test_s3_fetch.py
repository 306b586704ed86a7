"""Base images from s3://bucket/key on a real S3 server (SeaweedFS), with the storage's endpoint and credentials."""

from __future__ import annotations

import pytest

from npc_video_client.contract import ErrorCode, JobStatus
from npc_video_client.errors import JobError
from tests.support.jobs import data_uri, envelope, png_bytes
from worker.images import read_image_source
from worker.settings import Settings

pytestmark = pytest.mark.usefixtures("s3_env")
PNG = png_bytes(color=(10, 200, 90))


@pytest.fixture
def uploaded(seaweed) -> str:
    seaweed.client().put_object(Bucket=seaweed.bucket, Key="inputs/npc.png", Body=PNG, ContentType="image/png")
    return f"s3://{seaweed.bucket}/inputs/npc.png"


def read(url: str, endpoint: str, **settings: object) -> bytes:
    return read_image_source(url, Settings(s3_endpoint_url=endpoint, **settings), trusted=False)


def failure(url: str, endpoint: str, **settings: object) -> JobError:
    with pytest.raises(JobError) as raised:
        read(url, endpoint, **settings)
    return raised.value


def test_reads_the_object(seaweed, uploaded):
    assert read(uploaded, seaweed.endpoint) == PNG


def test_a_job_runs_end_to_end_from_an_s3_base_image(make_runner, seaweed, uploaded):
    runner = make_runner(s3_endpoint_url=seaweed.endpoint)
    from_data = runner.run(envelope("data", npc_base_image=data_uri(PNG)))
    from_s3 = runner.run(envelope("s3", npc_base_image=uploaded))
    assert from_s3.status == JobStatus.COMPLETED, from_s3.error_message
    assert from_s3.storage_key == from_data.storage_key and from_s3.cache_hit


def test_a_missing_object_is_invalid_image(seaweed):
    error = failure(f"s3://{seaweed.bucket}/inputs/nobody.png", seaweed.endpoint)
    assert error.code == ErrorCode.INVALID_IMAGE and not error.retryable
    assert f"s3://{seaweed.bucket}/inputs/nobody.png" in error.message and "NoSuchKey" in error.message


def test_an_object_over_the_byte_limit_is_invalid_image(seaweed, uploaded):
    error = failure(uploaded, seaweed.endpoint, max_image_bytes=len(PNG) - 1)
    assert error.code == ErrorCode.INVALID_IMAGE and f"over the limit of {len(PNG) - 1}" in error.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("s3://npc-videos", "no object key"),
        ("s3://Bad_Bucket/a.png", "not a valid bucket name"),
        ("s3://npc-videos/../a.png", "'..' segments"),
    ],
)
def test_malformed_s3_urls_are_invalid_image(seaweed, url, words):
    error = failure(url, seaweed.endpoint)
    assert error.code == ErrorCode.INVALID_IMAGE and words in error.message


def test_an_unreachable_store_is_a_retryable_storage_error():
    error = failure("s3://npc-videos/inputs/npc.png", "http://127.0.0.1:9")
    assert error.code == ErrorCode.STORAGE_ERROR and error.retryable
    assert "s3://npc-videos/inputs/npc.png" in error.message
