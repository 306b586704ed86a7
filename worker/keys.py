"""Content-addressed storage keys: identical resolved requests map to the same object (cache hits)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_segment(value: str) -> str:
    """An npc_id made safe as one path segment (no separators, no dot-only names), at most 64 chars."""
    cleaned = _UNSAFE.sub("_", value)
    if not cleaned.strip("."):
        cleaned = "_" + cleaned
    return cleaned[:64]


def video_key(npc_id: str, fingerprint: str) -> str:
    return f"{safe_segment(npc_id)}/{fingerprint[:2]}/{fingerprint}.mp4"


def thumbnail_key(npc_id: str, fingerprint: str) -> str:
    return f"{safe_segment(npc_id)}/{fingerprint[:2]}/{fingerprint}.jpg"


def thumbnail_key_of(video_key_: str) -> str:
    """The poster stored beside a video key."""
    return video_key_.removesuffix(".mp4") + ".jpg"
