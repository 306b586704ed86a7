"""Stable Video Diffusion (diffusers StableVideoDiffusionPipeline): sides multiple of 64, any frame count,
7 fps. Image-only: no prompt, no negative prompt, no LoRAs.

SVD has no text input, so the job's words are not used and the result reports `prompt` and
`negative_prompt` as null (pipelines.request). What SVD does take is the amount of motion: the job's
`intensity` 0..1 becomes `motion_bucket_id` 1 + round(intensity x 254), i.e. 1..255 (SVD's default 127 is
about intensity 0.5). `cfg` is the guidance at the last frame (`max_guidance_scale`); it ramps linearly
from 1.0 at the first frame (or from cfg when cfg < 1), as SVD's reference sampler does. The rate the frames
are generated at (7 with `native` timing, the job's fps with `stretch`) is SVD's `fps` conditioning. Sides: 8x
VAE x three 2x UNet downsamplings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.family import Family
from pipelines.grid import FrameRule

if TYPE_CHECKING:
    from PIL.Image import Image

    from pipelines.request import ResolvedRequest

MOTION_BUCKETS = 255


def motion_bucket_id(intensity: float) -> int:
    """Intensity 0..1 onto SVD's motion buckets 1..255."""
    return 1 + round(intensity * (MOTION_BUCKETS - 1))


@dataclass(frozen=True)
class SvdFamily(Family):
    # Frames the VAE decodes at once: bounds decoder memory on long clips (the value diffusers' examples use).
    decode_chunk_size: int = 8

    def call_kwargs(self, request: ResolvedRequest, image: Image) -> dict[str, Any]:
        return {
            "image": image,
            "height": request.height,
            "width": request.width,
            "num_frames": request.generated_frames,
            "num_inference_steps": request.steps,
            "min_guidance_scale": min(1.0, request.cfg),
            "max_guidance_scale": request.cfg,
            "fps": request.generated_fps,
            "motion_bucket_id": motion_bucket_id(request.motion),
            "decode_chunk_size": min(self.decode_chunk_size, request.generated_frames),
            "output_type": "np",
        }


SVD = SvdFamily(
    name="svd",
    pipeline_class="StableVideoDiffusionPipeline",
    size_multiple=64,
    frame_rule=FrameRule(step=1, offset=0),
    native_fps=7,
    takes_prompt=False,
    takes_negative_prompt=False,
    supports_loras=False,
)
