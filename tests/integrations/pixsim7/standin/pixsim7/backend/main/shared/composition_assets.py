"""pixsim7/backend/main/shared/composition_assets.py: coerce_composition_assets as in pixsim7."""

from __future__ import annotations

from typing import Any

from pixsim7.backend.main.shared.asset_refs import extract_asset_ref


def normalize_media_type(value: str | None) -> str | None:
    if value is None:
        return None
    raw = str(value).strip().lower()
    if raw in {"image", "img", "images"}:
        return "image"
    if raw in {"video", "vid", "videos"}:
        return "video"
    return raw


def _split_asset_or_url(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return (None, None)
    ref = extract_asset_ref(value, allow_url_asset_id=True)
    if ref:
        if ref.startswith("asset:"):
            return (ref, None)
        if ref.startswith(("http://", "https://")):
            return (None, ref)
    if isinstance(value, str):
        return (None, value)
    return (None, None)


def coerce_composition_assets(
    values: Any, *, default_media_type: str | None = None, default_role: str | None = None
) -> list[dict[str, Any]]:
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    normalized: list[dict[str, Any]] = []
    for item in values:
        if isinstance(item, dict):
            entry = dict(item)
            asset_value = entry.get("asset") or entry.get("asset_id") or entry.get("assetId") or entry.get("asset_ref")
            url_value = entry.get("url")
            asset_ref, url_ref = _split_asset_or_url(asset_value)
            if not url_ref and url_value:
                url_ref = url_value
            if asset_ref:
                entry["asset"] = asset_ref
            if url_ref:
                entry["url"] = url_ref
            media_type = entry.get("media_type") or entry.get("mediaType") or entry.get("media")
            if not media_type and default_media_type:
                entry["media_type"] = default_media_type
            else:
                entry["media_type"] = normalize_media_type(media_type)
            if default_role and not entry.get("role"):
                entry["role"] = default_role
            if entry.get("asset") or entry.get("url") or entry.get("provider_params"):
                normalized.append(entry)
            continue
        asset_ref, url_ref = _split_asset_or_url(item)
        if not asset_ref and not url_ref:
            continue
        plain: dict[str, Any] = {}
        if asset_ref:
            plain["asset"] = asset_ref
        if url_ref:
            plain["url"] = url_ref
        if default_media_type:
            plain["media_type"] = default_media_type
        if default_role:
            plain["role"] = default_role
        normalized.append(plain)
    return normalized
