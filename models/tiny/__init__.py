"""Tiny randomly initialised checkpoints, built offline with the real diffusers classes.

Tests and the demo load them through exactly the code path used for production weights
(`from_pretrained` on a diffusers-format directory), so nothing is mocked and nothing downloaded.
Each family registers its builder here: `TINY_BUILDERS[family](directory, seed)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.tiny.wan import build_wan_i2v, write_tiny_wan_lora

TinyBuilder = Callable[[Path, int], None]

TINY_BUILDERS: dict[str, TinyBuilder] = {"wan-i2v": build_wan_i2v}

__all__ = ["TINY_BUILDERS", "TinyBuilder", "build_wan_i2v", "write_tiny_wan_lora"]
