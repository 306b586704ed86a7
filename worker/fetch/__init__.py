"""Base images from object storage (`s3://`) and the web (`http(s)://`), behind a short-lived cache.

data: URIs and local paths are read in worker.images; everything here crosses the network, so the
downloaded bytes are kept for a minute (bounded) for the next job of the same NPC. The S3 reader (boto3) is
imported only for an s3:// URL.
"""

from __future__ import annotations

from worker.fetch.cache import BytesCache
from worker.fetch.http import fetch_http
from worker.settings import Settings

__all__ = ["REMOTE_SCHEMES", "fetch_remote", "recent_downloads"]

REMOTE_SCHEMES = frozenset({"s3", "http", "https"})
recent_downloads = BytesCache(max_entries=32, max_bytes=128 * 1024 * 1024, max_age_s=60.0)


def fetch_remote(url: str, settings: Settings) -> bytes:
    """The bytes behind an s3:// or http(s):// URL; cached per URL and per the settings that guard it."""
    key = (
        url,
        settings.s3_endpoint_url,
        settings.allow_private_networks,
        tuple(settings.fetch_allowed_hosts),
        settings.max_image_bytes,
    )
    cached = recent_downloads.get(key)
    if cached is not None:
        return cached
    if url.lower().startswith("s3://"):
        from worker.fetch.s3 import fetch_s3

        data = fetch_s3(url, settings)
    else:
        data = fetch_http(url, settings)
    recent_downloads.put(key, data)
    return data
