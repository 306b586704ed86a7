"""Prompt building and default seeds, exactly as CONTRACT.md section 1 specifies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def intensity_word(intensity: float) -> str:
    if intensity < 0.3:
        return "slightly"
    if intensity < 0.7:
        return "moderately"
    return "very"


def build_prompt(
    *,
    base: str,
    intensity: float,
    expression: str,
    emotion: str,
    animation: str,
    style_suffix: str | None = None,
    triggers: Iterable[str] = (),
) -> str:
    """`{base}, {word} {expression}, {emotion} expression[, {animation} animation][, suffix][, triggers]`.

    Empty free-text fields are left out rather than producing dangling words.
    """
    parts = [base.strip()]
    if expression.strip():
        parts.append(f"{intensity_word(intensity)} {expression.strip()}")
    if emotion.strip():
        parts.append(f"{emotion.strip()} expression")
    if animation.strip() and animation.strip().lower() != "idle":
        parts.append(f"{animation.strip()} animation")
    if style_suffix:
        parts.append(style_suffix.strip())
    parts.extend(trigger.strip() for trigger in triggers if trigger.strip())
    return ", ".join(parts)


def default_seed(npc_id: str) -> int:
    """A stable 32-bit seed from the NPC id (sha256; Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(npc_id.encode("utf-8")).digest()[:4], "big")
