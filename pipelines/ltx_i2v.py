"""LTX-Video image-to-video (diffusers LTXImageToVideoPipeline): sides multiple of 32, frames 8k+1, 24 fps.

The VAE compresses 32x in space and 8x in time; LTX also conditions its RoPE on the frame rate, so the rate the
frames are generated at is passed as `frame_rate` (24 with `native` timing, the job's fps with `stretch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.family import Family
from pipelines.grid import FrameRule

if TYPE_CHECKING:
    from PIL.Image import Image

    from pipelines.request import ResolvedRequest


@dataclass(frozen=True)
class LtxFamily(Family):
    def call_kwargs(self, request: ResolvedRequest, image: Image) -> dict[str, Any]:
        return {**super().call_kwargs(request, image), "frame_rate": request.generated_fps}


LTX_I2V = LtxFamily(
    name="ltx-i2v",
    pipeline_class="LTXImageToVideoPipeline",
    size_multiple=32,
    frame_rule=FrameRule(step=8, offset=1),
    native_fps=24,
)
