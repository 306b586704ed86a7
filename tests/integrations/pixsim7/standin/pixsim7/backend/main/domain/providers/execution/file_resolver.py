"""pixsim7/backend/main/domain/providers/execution/file_resolver.py: resolve_source_to_local_file, the resolver
ProviderService binds into `resolve_source_fn`: an asset of the generation's user (its local file, else its remote URL
downloaded), a file:// URL, an http(s) URL downloaded to a temporary file, or an existing path. pixsim7 looks assets
up in its database and downloads with httpx; here `db_session` is an AssetTable and downloads use urllib."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from pixsim7.backend.main.shared.asset_refs import extract_asset_id
from pixsim7.backend.main.shared.errors import ProviderError


@dataclass
class Asset:
    id: int
    user_id: int
    local_path: str | None = None
    remote_url: str | None = None


@dataclass
class AssetTable:
    """What ProviderService's database session answers about assets."""

    assets: dict[int, Asset] = field(default_factory=dict)

    async def get(self, model: type[Asset], asset_id: int) -> Asset | None:
        return self.assets.get(asset_id)


async def resolve_source_to_local_file(
    *, source: Any, user_id: int, default_suffix: str, db_session: AssetTable | None = None
) -> tuple[str, list[str]]:
    if source is None:
        raise ProviderError("Missing required file source for provider upload")
    asset_id = extract_asset_id(source)
    if asset_id is not None:
        if db_session is None:
            raise ProviderError("Database session required for asset lookup")
        asset = await db_session.get(Asset, asset_id)
        if not asset or asset.user_id != user_id:
            raise ProviderError(f"Asset {asset_id} not found for user")
        if asset.local_path and os.path.exists(asset.local_path):
            return (asset.local_path, [])
        if asset.remote_url:
            return _download_url_to_temp(asset.remote_url, default_suffix=default_suffix)
        raise ProviderError(f"Asset {asset_id} has no local_path and no remote_url")
    if not isinstance(source, str):
        raise ProviderError(f"Unsupported source type for provider upload: {type(source)}")
    src = source.strip()
    parsed = urlparse(src)
    if parsed.scheme in ("http", "https"):
        return _download_url_to_temp(src, default_suffix=default_suffix)
    if parsed.scheme == "file":
        return _validate_existing_path(unquote(parsed.path or ""))
    if os.path.exists(src):
        return _validate_existing_path(src)
    raise ProviderError(f"Unsupported file source '{src}' (not a path, URL, or asset reference)")


def _validate_existing_path(path: str) -> tuple[str, list[str]]:
    if not path or not os.path.exists(path):
        raise ProviderError(f"Local file not found: {path}")
    return (path, [])


def _download_url_to_temp(url: str, *, default_suffix: str) -> tuple[str, list[str]]:
    suffix = os.path.splitext(urlparse(url).path or "")[1] or default_suffix
    handle, tmp_path = tempfile.mkstemp(suffix=suffix)
    os.close(handle)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp_path, "wb") as out:
            out.write(response.read())
    except Exception as exc:
        os.remove(tmp_path)
        raise ProviderError(f"Failed to download url for provider upload: {url}") from exc
    return (tmp_path, [tmp_path])
