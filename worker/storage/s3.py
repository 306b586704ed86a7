"""S3-compatible object storage (AWS S3, MinIO, SeaweedFS, R2...): one verified, atomic PUT per object.

A single PutObject is all-or-nothing, so players never see a partial video and no multipart upload can be
left behind. The client's timeouts and retries are short: during an outage a job fails with storage_error
(retried later by the queue) within seconds instead of holding the GPU worker for minutes.
Credentials and region come from the standard AWS environment variables, files or instance roles (boto3).
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote as quote_json
from worker.settings import Settings
from worker.storage.base import StorageConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/key`: the key may be empty (a storage URL without prefix)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Location:
    """Split `s3://bucket/key`, refusing what S3 would not accept or what would be ambiguous as a key."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise ValueError(f"{quote_json(url)} is not an s3://bucket/key URL")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise ValueError(f"{quote_json(url)} must be s3://bucket/key without credentials, port, '?' or '#'")
    if not BUCKET_NAME.match(parts.netloc):
        raise ValueError(
            f"bucket {quote_json(parts.netloc)} in {quote_json(url)} is not a valid bucket name (3-63 of a-z 0-9 . -)"
        )
    key = parts.path.removeprefix("/")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise ValueError(f"key {quote_json(key)} in {quote_json(url)} must not contain '.' or '..' segments")
    return S3Location(bucket=parts.netloc, key=key)


def make_s3_client(endpoint_url: str | None) -> S3Client:
    """A client that gives up within seconds: 3 s to connect, 10 s per read, two attempts in all."""
    config = Config(
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "total_max_attempts": 2},
        signature_version="s3v4",
        # AWS: bucket.s3.<region>.amazonaws.com, so presigned URLs work in every region;
        # custom endpoints (MinIO, SeaweedFS, R2...): botocore picks path style.
        s3={"addressing_style": "auto" if endpoint_url else "virtual"},
    )
    try:
        return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise StorageConfigError(f"cannot create an S3 client for endpoint {endpoint_url or 'AWS'}: {exc}") from exc


def endpoint_unreachable(exc: BaseException) -> bool:
    """Whether a storage configuration error was the endpoint not answering (a connection or read timeout)."""
    from botocore.exceptions import ConnectionError as EndpointUnreachable
    from botocore.exceptions import ReadTimeoutError

    return isinstance(exc.__cause__, (EndpointUnreachable, ReadTimeoutError))


def describe_boto_error(exc: Exception) -> str:
    """The S3 error code and message (or the network failure) in one line."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message') or exc}"
    return str(exc)


class S3Storage:
    def __init__(
        self, client: S3Client, bucket: str, prefix: str, *, public_base_url: str | None, presign_ttl_s: int
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_ttl_s = presign_ttl_s

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> S3Storage:
        try:
            location = parse_s3_url(url)
        except ValueError as exc:
            raise StorageConfigError(f"storage URL: {exc}") from exc
        return cls(
            make_s3_client(settings.s3_endpoint_url),
            location.bucket,
            location.key,
            public_base_url=settings.public_base_url,
            presign_ttl_s=settings.presign_ttl_s,
        )

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _failure(self, action: str, key: str, exc: Exception) -> JobError:
        where = f"s3://{self.bucket}/{self.object_key(key)}"
        return JobError(ErrorCode.STORAGE_ERROR, f"{action} {where} failed: {describe_boto_error(exc)}")

    def exists(self, key: str) -> bool:
        """HeadObject; a missing object is a miss, any other failure (403 included) is a storage_error."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in NOT_FOUND:
                return False
            if code in ("403", "AccessDenied"):
                raise JobError(
                    ErrorCode.STORAGE_ERROR,
                    f"checking s3://{self.bucket}/{self.object_key(key)} failed: access denied; check the AWS "
                    "credentials and that they allow s3:GetObject, s3:PutObject and s3:ListBucket on the bucket",
                ) from exc
            raise self._failure("checking", key, exc) from exc
        except BotoCoreError as exc:
            raise self._failure("checking", key, exc) from exc
        return True

    def put(self, key: str, source: Path, content_type: str) -> None:
        """One PutObject with a SHA-256 the store verifies, then a HeadObject that confirms the size."""
        data = source.read_bytes()
        size = len(data)
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        object_key = self.object_key(key)
        try:
            sent = self.client.put_object(
                Bucket=self.bucket, Key=object_key, Body=data, ContentType=content_type, ChecksumSHA256=checksum
            )
            stored = self.client.head_object(Bucket=self.bucket, Key=object_key)
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("uploading", key, exc) from exc
        echoed = sent.get("ChecksumSHA256")
        if stored["ContentLength"] != size or (echoed is not None and echoed != checksum):
            self._discard(object_key)
            raise JobError(
                ErrorCode.STORAGE_ERROR,
                f"uploading s3://{self.bucket}/{object_key} failed: the store holds {stored['ContentLength']} bytes "
                f"(checksum {echoed}) but {size} bytes (checksum {checksum}) were sent; the object was deleted",
            )

    def delete(self, key: str) -> None:
        """DeleteObject (a missing object is no error in S3)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("deleting", key, exc) from exc

    def _discard(self, object_key: str) -> None:
        """Remove a bad upload so that `exists` can never report it as a cache hit."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except (BotoCoreError, ClientError) as exc:
            raise JobError(
                ErrorCode.STORAGE_ERROR,
                f"s3://{self.bucket}/{object_key} was stored wrong and cannot be deleted: {describe_boto_error(exc)}",
            ) from exc

    def url(self, key: str) -> str:
        """`{public_base_url}/{prefix}/{key}` when a public base is set, else a presigned GET URL."""
        object_key = self.object_key(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(object_key)}"
        try:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": object_key}, ExpiresIn=self.presign_ttl_s
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._failure("presigning", key, exc) from exc

    def check(self) -> None:
        """Put and delete a probe object under the prefix (checks the bucket, the credentials and the network)."""
        probe = self.object_key(f".npc-worker-probe-{uuid.uuid4().hex}")
        try:
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"probe", ContentType="text/plain")
            self.client.delete_object(Bucket=self.bucket, Key=probe)
        except (BotoCoreError, ClientError) as exc:
            raise StorageConfigError(
                f"object storage s3://{self.bucket}/{self.prefix} is not writable: {describe_boto_error(exc)} "
                "(check NPC_WORKER_STORAGE_URL, NPC_WORKER_S3_ENDPOINT_URL and the AWS credentials)"
            ) from exc
