"""Where finished videos go: a small interface and its backends, chosen by NPC_WORKER_STORAGE_URL.

The S3 backend (worker.storage.s3, boto3) is imported only when an s3:// URL is configured: a worker storing in
a folder runs without boto3 installed (the GPU check carries no boto3 wheels)."""

from __future__ import annotations

from pathlib import Path

from worker.settings import Settings
from worker.storage.base import Storage, StorageConfigError
from worker.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageConfigError", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """`file://DIR` (relative DIR: against the working directory) or `s3://bucket/prefix`; with a public base URL,
    result URLs point there (for a local directory: where a web server serves it)."""
    url = settings.storage_url
    if url.startswith("file://"):
        root = Path(url.removeprefix("file://")).expanduser().resolve()
        return LocalStorage(root, public_base_url=settings.public_base_url)
    if url.lower().startswith("s3://"):
        from worker.storage.s3 import S3Storage

        return S3Storage.from_settings(url, settings)
    raise StorageConfigError(f"storage URL {url!r} is not supported; use file://DIR or s3://bucket/prefix")
