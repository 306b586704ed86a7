"""Tiny randomly initialised checkpoints, built offline with the real diffusers classes.

Tests and the demo load them through exactly the code path used for production weights
(`from_pretrained` on a diffusers-format directory), so nothing is mocked and nothing downloaded.
Each family registers its builder here: `TINY_BUILDERS[family](directory, seed)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.tiny.cogvideox import build_cogvideox_i2v
from models.tiny.ltx import build_ltx_i2v
from models.tiny.svd import build_svd
from models.tiny.wan import build_wan_i2v, write_tiny_wan_lora
from models.tiny.wan22 import build_wan22_i2v, build_wan22_ti2v, write_tiny_wan22_lora

TinyBuilder = Callable[[Path, int], None]

TINY_BUILDERS: dict[str, TinyBuilder] = {
    "wan-i2v": build_wan_i2v,
    "wan22-i2v": build_wan22_i2v,
    "wan22-ti2v": build_wan22_ti2v,
    "ltx-i2v": build_ltx_i2v,
    "cogvideox-i2v": build_cogvideox_i2v,
    "svd": build_svd,
}

__all__ = [
    "TINY_BUILDERS",
    "TinyBuilder",
    "build_cogvideox_i2v",
    "build_ltx_i2v",
    "build_svd",
    "build_wan22_i2v",
    "build_wan22_ti2v",
    "build_wan_i2v",
    "write_tiny_wan22_lora",
    "write_tiny_wan_lora",
]
