"""Snapping sizes and frame counts to what a model family accepts (nearest valid value)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts are `step * k + offset` for k >= 1 (Wan: 4k+1, LTX: 8k+1)."""

    step: int
    offset: int

    def snap(self, frames: int) -> int:
        k = max(1, round((frames - self.offset) / self.step))
        return self.step * k + self.offset

    def describe(self) -> str:
        return f"{self.step}k+{self.offset}"


MAX_SIDE = 2048  # the contract's largest width/height; derived sides are held to it too


def snap_side(value: float, multiple: int) -> int:
    """Nearest multiple of `multiple`, at least one multiple and at most MAX_SIDE."""
    return min(max(multiple, round(value / multiple) * multiple), MAX_SIDE // multiple * multiple)


def fit_area(area: int, aspect: float, multiple: int) -> tuple[int, int]:
    """Width and height with about `area` pixels and the given width/height aspect, snapped to the grid."""
    width = math.sqrt(area * aspect)
    height = math.sqrt(area / aspect)
    return snap_side(width, multiple), snap_side(height, multiple)
