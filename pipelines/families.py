"""The model families by catalog name (`family = "..."`): one row each, what the family's diffusers pipeline takes.

The three differences in how a family is called are small subclasses of Family below the rows' shared fields:
LTX's `frame_rate`, SVD's own call (no text, motion and guidance ramp) and Wan 2.2 A14B's LoRAs into both experts.
Sides multiples = VAE spatial compression x the transformer's patch; frame rules follow the VAE's time compression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.family import Family
from pipelines.grid import FrameRule
from pipelines.limits import cogvideox_limits, wan_limits

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image

    from pipelines.request import ResolvedRequest

WAN_FRAMES = FrameRule(step=4, offset=1)  # the Wan VAEs compress 4x in time: 4k+1 frames


@dataclass(frozen=True)
class TwoExpertFamily(Family):
    """A pipeline with two denoisers (`transformer`, `transformer_2`) that both take every LoRA: each file is loaded
    into each expert under one adapter name, so `set_adapters`, `disable_lora` and `delete_adapters` on the pipeline
    act on both. Per-expert LoRA files (the high-noise / low-noise pairs some Wan 2.2 LoRAs ship as) and per-expert
    weights are not modelled: a catalog LoRA goes into both experts with one weight."""

    def load_lora(self, pipe: Any, path: Path, adapter_name: str, hotswap: bool = False) -> None:
        pipe.load_lora_weights(str(path), adapter_name=adapter_name, hotswap=hotswap)
        pipe.load_lora_weights(str(path), adapter_name=adapter_name, load_into_transformer_2=True, hotswap=hotswap)


@dataclass(frozen=True)
class FrameRateFamily(Family):
    """LTX conditions its RoPE on the frame rate: the rate frames are generated at goes in as `frame_rate` (the
    native 24 with `native` timing, the job's fps with `stretch`)."""

    def call_kwargs(self, request: ResolvedRequest, image: Image) -> dict[str, Any]:
        return {**super().call_kwargs(request, image), "frame_rate": request.generated_fps}


MOTION_BUCKETS = 255


def motion_bucket_id(intensity: float) -> int:
    """Intensity 0..1 onto SVD's motion buckets 1..255 (SVD's default 127 is about intensity 0.5)."""
    return 1 + round(intensity * (MOTION_BUCKETS - 1))


@dataclass(frozen=True)
class SvdFamily(Family):
    """SVD has no text input: the job's words are not used (the result reports `prompt` and `negative_prompt` as
    null, pipelines.request). It takes the amount of motion: the job's `intensity` becomes `motion_bucket_id`.
    `cfg` is the guidance at the last frame (`max_guidance_scale`), ramping linearly from 1.0 at the first frame (or
    from cfg when cfg < 1), as SVD's reference sampler does. The rate frames are generated at (7 with `native`
    timing, the job's fps with `stretch`) is SVD's `fps` conditioning."""

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


# Wan 2.1 I2V: Wan VAE (8x space) x 2x2 patches.
WAN_I2V = Family(
    name="wan-i2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=16,
    frame_rule=WAN_FRAMES,
    native_fps=16,
    context_parallel=True,
    limits=wan_limits,
)

# Wan 2.2 I2V A14B: the high-noise expert `transformer` denoises while t >= boundary_ratio x 1000 (from the
# checkpoint's pipeline config), the low-noise expert `transformer_2` after it; no image encoder.
WAN22_I2V = TwoExpertFamily(
    name="wan22-i2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=16,
    frame_rule=WAN_FRAMES,
    native_fps=16,
    context_parallel=True,
    limits=wan_limits,
)

# Wan 2.2 TI2V-5B with `expand_timesteps=True`: the Wan 2.2 VAE compresses 16x in space and the transformer patches
# 2x2, hence the 32-pixel grid (its native 1280x704 is on it). The hub checkpoint's model_index.json names WanPipeline
# (text-to-video); the same folder loads as WanImageToVideoPipeline, which then conditions on the start frame's
# latents (the image encoder it lacks is optional).
WAN22_TI2V = Family(
    name="wan22-ti2v",
    pipeline_class="WanImageToVideoPipeline",
    size_multiple=32,
    frame_rule=WAN_FRAMES,
    native_fps=24,
    context_parallel=True,
    limits=wan_limits,
)

# LTX-Video: the VAE compresses 32x in space and 8x in time.
LTX_I2V = FrameRateFamily(
    name="ltx-i2v",
    pipeline_class="LTXImageToVideoPipeline",
    size_multiple=32,
    frame_rule=FrameRule(step=8, offset=1),
    native_fps=24,
    context_parallel=True,
)

# CogVideoX 1.5 (16 fps; 1.0 was trained at 8): 8x VAE x 2x2 patches. Frames are 8k+1, not 4k+1: the VAE (4x in
# time) decodes latents two at a time, and an even number of latent frames decodes to 4n frames instead of 4n-3, so
# only an odd latent count (8k+1 frames: 49, 81) gives back exactly the frames asked for. CogVideoX1.5-5B-I2V takes
# any size on the grid; CogVideoX-5b-I2V (1.0) has learned positional embeddings and runs at 720x480 only, which
# models.limits enforces from its config.
COGVIDEOX_I2V = Family(
    name="cogvideox-i2v",
    pipeline_class="CogVideoXImageToVideoPipeline",
    size_multiple=16,
    frame_rule=FrameRule(step=8, offset=1),
    native_fps=16,
    limits=cogvideox_limits,
)

# Stable Video Diffusion: 8x VAE x three 2x UNet downsamplings; any frame count; image only (no LoRAs).
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

FAMILIES: dict[str, Family] = {
    family.name: family for family in (WAN_I2V, WAN22_I2V, WAN22_TI2V, LTX_I2V, COGVIDEOX_I2V, SVD)
}
