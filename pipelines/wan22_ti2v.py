"""Wan 2.2 TI2V-5B image-to-video (diffusers WanImageToVideoPipeline, `expand_timesteps=True`): sides multiple
of 32, frames 4k+1, 24 fps.

The Wan 2.2 VAE compresses 16x in space and the transformer patches 2x2, hence the 32-pixel grid
(TI2V-5B's native 1280x704 is on it). The hub checkpoint's model_index.json names WanPipeline (text-to-video)
with `expand_timesteps: true`; the same folder loads as WanImageToVideoPipeline, which then conditions on
the start frame's latents (the image encoder it lacks is optional).
"""

from __future__ import annotations

from pipelines.family import Family
from pipelines.grid import FrameRule

WAN22_TI2V = Family(
    name="wan22-ti2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=32,
    frame_rule=FrameRule(step=4, offset=1),
    native_fps=24,
)
