"""Wan 2.1 image-to-video (diffusers WanImageToVideoPipeline): sides multiple of 16, frames 4k+1, 16 fps."""

from __future__ import annotations

from pipelines.family import Family
from pipelines.grid import FrameRule

WAN_I2V = Family(
    name="wan-i2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=16,
    frame_rule=FrameRule(step=4, offset=1),
    native_fps=16,
)
