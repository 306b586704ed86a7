"""What a model can run, from its components' configs: frames and sizes its position tables cover, and the fewest
steps its scheduler takes.

Beyond these a request does not fail cleanly: the transformer slices a rotary table shorter than the latents (a
RuntimeError about shapes), refuses a size its learned positional embeddings were not made for, or the scheduler
divides by zero. Each family row names the function that reads its table limits (pipelines.families), and
`read_limits` adds the scheduler's; models.limits reads the configs (the checkpoint's config files, before it loads)
and request resolution refuses what does not fit. Prompts need no limit: the pipelines truncate them to the
tokenizer's length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

# component ("transformer", "vae", "scheduler") -> its config file as a dict; a component without one is absent
ComponentConfigs = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class ModelLimits:
    """None: no such limit. Sizes are (width, height) in pixels, frames what the pipeline generates; each reason
    says which config values set the limit."""

    max_frames: int | None = None
    max_size: tuple[int, int] | None = None
    exact_size: tuple[int, int] | None = None
    min_steps: int | None = None
    frames_reason: str = ""
    size_reason: str = ""
    steps_reason: str = ""

    def violation(self, *, width: int, height: int, frames: int, fps: int, steps: int) -> str | None:
        """What in a request (after snapping to the family's grids) the model cannot run, and what to ask for
        instead, as the end of a sentence about the model; None when it fits."""
        if self.min_steps is not None and steps < self.min_steps:
            return (
                f"takes at least {self.min_steps} denoising steps ({self.steps_reason}); this job asks for {steps}: "
                f"ask for steps = {self.min_steps} or more"
            )
        asked = f"{width}x{height}"
        if self.exact_size is not None and (width, height) != self.exact_size:
            fixed = f"{self.exact_size[0]}x{self.exact_size[1]}"
            return (
                f"runs at exactly {fixed} only ({self.size_reason}); this job asks for {asked}: ask for width "
                f"{self.exact_size[0]} and height {self.exact_size[1]}, or use a model without that limit"
            )
        if self.max_size is not None and (width > self.max_size[0] or height > self.max_size[1]):
            largest = f"{self.max_size[0]}x{self.max_size[1]}"
            return (
                f"takes at most {largest} ({self.size_reason}); this job asks for {asked}: ask for a smaller width or "
                "height (a base image sent without width and height is sized at its own aspect: a very wide or tall "
                "one makes a long side)"
            )
        if self.max_frames is not None and frames > self.max_frames:
            return (
                f"generates at most {self.max_frames} frames ({self.frames_reason}); this job needs {frames} "
                f"({frames / fps:.2f} s at the {fps} fps it is generated at): ask for a shorter duration (at most "
                f'{self.max_frames / fps:.2f} s here), or a lower fps with motion = "stretch"'
            )
        return None


LimitsReader = Callable[[ComponentConfigs], ModelLimits]


def read_limits(table: LimitsReader, configs: ComponentConfigs) -> ModelLimits:
    """The family's table limits (`table`, a family row's `limits`) and the scheduler's fewest steps.

    A flow-match scheduler with `shift_terminal` (LTX-Video's) stretches its sigmas so that the last one reaches
    that value, dividing by the distance the last step covers: with one step that distance is 0 and every sigma
    becomes NaN (an IndexError in the first step).
    """
    limits = table(configs)
    shift_terminal = configs.get("scheduler", {}).get("shift_terminal")
    if shift_terminal:
        reason = f"its scheduler stretches its sigmas to shift_terminal = {shift_terminal}, which takes two"
        limits = replace(limits, min_steps=2, steps_reason=reason)
    return limits


def no_limits(_configs: ComponentConfigs) -> ModelLimits:
    """LTX-Video (coordinates scaled into RoPE, no table) and SVD (sinusoidal embeddings): no table bounds them."""
    return ModelLimits()


def wan_limits(configs: ComponentConfigs) -> ModelLimits:
    """Wan's 3D RoPE is a table of `rope_max_seq_len` positions per axis (frames, height, width in patches): the
    transformer slices it to the latents' size and fails when they are longer."""
    transformer = configs.get("transformer")
    if transformer is None:
        return ModelLimits()
    vae = configs.get("vae", {})
    positions = int(transformer.get("rope_max_seq_len", 1024))
    patch_t, patch_h, patch_w = (int(value) for value in transformer.get("patch_size", (1, 2, 2)))
    temporal = int(vae.get("scale_factor_temporal", 4))
    spatial = int(vae.get("scale_factor_spatial", 8))
    latent_frames = positions * patch_t
    table = f"transformer rope_max_seq_len = {positions}"
    return ModelLimits(
        max_frames=(latent_frames - 1) * temporal + 1,
        max_size=(positions * patch_w * spatial, positions * patch_h * spatial),
        frames_reason=f"its rotary position table, {table}, covers {latent_frames} latent frames",
        size_reason=f"its rotary position table, {table}, covers {positions} patches of {patch_w * spatial} px a side",
    )


def cogvideox_limits(configs: ComponentConfigs) -> ModelLimits:
    """CogVideoX 1.0 I2V adds learned positional embeddings made for one size; 1.5 slices its 3D RoPE from tables of
    `sample_width` x `sample_height` latent units (`patch_size_t` set). Frames are free in both: the temporal
    positions are computed for the latents' length."""
    transformer = configs.get("transformer")
    if transformer is None:
        return ModelLimits()
    spatial = 2 ** (len(configs.get("vae", {}).get("block_out_channels", (0, 0, 0, 0))) - 1)
    patch = int(transformer.get("patch_size", 2))
    units_w, units_h = int(transformer.get("sample_width", 90)), int(transformer.get("sample_height", 60))
    sample = f"sample_width = {units_w} and sample_height = {units_h} latent units"
    if transformer.get("use_learned_positional_embeddings"):
        return ModelLimits(
            exact_size=(units_w * spatial, units_h * spatial),
            size_reason=f"its learned positional embeddings: transformer use_learned_positional_embeddings, {sample}",
        )
    if transformer.get("use_rotary_positional_embeddings") and transformer.get("patch_size_t") is not None:
        return ModelLimits(
            max_size=(units_w // patch * patch * spatial, units_h // patch * patch * spatial),
            size_reason=f"its rotary position tables, transformer {sample}",
        )
    return ModelLimits()
