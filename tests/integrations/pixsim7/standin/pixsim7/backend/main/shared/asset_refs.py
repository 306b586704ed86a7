"""pixsim7/backend/main/shared/asset_refs.py: the asset reference forms pixsim7 accepts ("asset:42", "asset_42", 42,
"42", {"asset_id": 42}, {"type": "asset", "id": 42}), without its EntityRef machinery and URL-embedded ids."""

from __future__ import annotations

import re
from typing import Any

_ASSET_REF_RE = re.compile(r"^(?:asset[_:])(?P<id>\d+)$")


def extract_asset_id(value: Any, *, allow_numeric_string: bool = True) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        raw = value.strip()
        match = _ASSET_REF_RE.match(raw)
        if match:
            return int(match.group("id"))
        return int(raw) if allow_numeric_string and raw.isdigit() else None
    if isinstance(value, dict):
        if value.get("type") not in (None, "asset"):
            return None
        return extract_asset_id(value.get("asset_id") or value.get("assetId") or value.get("id"))
    return None


def extract_asset_ref(value: Any, *, allow_url_asset_id: bool = False) -> str | None:
    """The reference "asset:N" for an asset reference, the URL itself for an http(s) URL, else None."""
    asset_id = extract_asset_id(value)
    if asset_id is not None:
        return f"asset:{asset_id}"
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None
