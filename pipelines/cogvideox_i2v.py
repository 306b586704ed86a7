"""CogVideoX image-to-video (diffusers CogVideoXImageToVideoPipeline): sides multiple of 16, frames 8k+1,
16 fps (CogVideoX 1.5; 1.0 was trained at 8 fps).

Frames are 8k+1, not 4k+1: the VAE (4x in time) decodes latents two at a time, and an even number of
latent frames decodes to 4n frames instead of 4n-3, so only an odd latent count (8k+1 frames: 49, 81)
gives back exactly the frames requested. Sides: 8x VAE x 2x2 patches.
CogVideoX1.5-5B-I2V takes any size on that grid. CogVideoX-5b-I2V (1.0) has learned positional embeddings
and runs at exactly 720x480 only, which this family does not enforce: use 1.5 checkpoints with it.
"""

from __future__ import annotations

from pipelines.family import Family
from pipelines.grid import FrameRule

COGVIDEOX_I2V = Family(
    name="cogvideox-i2v",
    pipeline_class="CogVideoXImageToVideoPipeline",
    size_multiple=16,
    frame_rule=FrameRule(step=8, offset=1),
    native_fps=16,
)
