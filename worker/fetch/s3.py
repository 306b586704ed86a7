"""Base images from `s3://bucket/key`, read with the storage's endpoint and credentials.

The endpoint is the operator's (NPC_WORKER_S3_ENDPOINT_URL), so no address guard applies; what a job can
read is whatever the worker's credentials can read, so give them read access to the input buckets only.
A missing or forbidden object is invalid_image; an unreachable or failing store is storage_error (retried).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from worker.settings import Settings
from worker.storage.s3 import describe_boto_error, make_s3_client, parse_s3_url

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@lru_cache(maxsize=4)
def client_for(endpoint_url: str | None) -> S3Client:
    """Clients are thread-safe and take tens of milliseconds to build: one per endpoint."""
    return make_s3_client(endpoint_url)


def fetch_s3(url: str, settings: Settings) -> bytes:
    try:
        location = parse_s3_url(url)
    except ValueError as exc:
        raise JobError(ErrorCode.INVALID_IMAGE, f"npc_base_image: {exc}") from exc
    if not location.key:
        raise JobError(ErrorCode.INVALID_IMAGE, f"npc_base_image {quote(url)} names a bucket but no object key")
    limit = settings.max_image_bytes
    try:
        response = client_for(settings.s3_endpoint_url).get_object(Bucket=location.bucket, Key=location.key)
        with response["Body"] as body:
            if response["ContentLength"] > limit:
                raise JobError(
                    ErrorCode.INVALID_IMAGE,
                    f"npc_base_image {location} is {response['ContentLength']} bytes, over the limit of {limit}",
                )
            return body.read()
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = ErrorCode.STORAGE_ERROR if status >= 500 else ErrorCode.INVALID_IMAGE
        raise JobError(code, f"npc_base_image {location} cannot be read: {describe_boto_error(exc)}") from exc
    except BotoCoreError as exc:
        raise JobError(
            ErrorCode.STORAGE_ERROR, f"npc_base_image {location} cannot be read: {describe_boto_error(exc)}"
        ) from exc
