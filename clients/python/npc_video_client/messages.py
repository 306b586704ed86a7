"""Quoting producer-sent values in error messages: as JSON (what the producer wrote), never megabytes long.

Messages travel back in results, events and dead letters that live for days, so a value is cut to a few dozen
characters; a value that cannot be written as JSON (nested too deeply, not JSON at all) is named by its kind.
"""

from __future__ import annotations

import json
from typing import Any

QUOTE_LIMIT = 60
MESSAGE_LIMIT = 1000
ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, and always encodable as UTF-8: a lone surrogate sent by a producer (JSON allows
    "\\ud800") is written as its escape, so the message can be stored and sent on."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """`value` as JSON text cut to `limit` characters, e.g. `"fast"`, `12`, `true`, `{"a": [1, 2]}`."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=_unjsonable)
    except (RecursionError, ValueError, TypeError):
        text = f"<{type(value).__name__} nested too deeply to show>"
    return shorten(text, limit)


def _unjsonable(value: Any) -> str:
    return f"<{type(value).__name__}>"
