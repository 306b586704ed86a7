"""What a model family declares: its diffusers class, grids, native fps, inputs, and the call mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.grid import FrameRule
from pipelines.limits import LimitsReader, no_limits
from pipelines.timing import FrameTiming, Motion, output_frame_count

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image

    from pipelines.request import ResolvedRequest


@dataclass(frozen=True)
class Family:
    """One image-to-video model family (a row of pipelines.families).

    Subclasses override `call_kwargs` when the diffusers call differs, and `load_lora` when a LoRA file
    must go somewhere other than the pipeline's default denoiser (e.g. into both Wan 2.2 experts).
    """

    name: str
    pipeline_class: str
    size_multiple: int
    frame_rule: FrameRule
    native_fps: int
    takes_prompt: bool = True
    takes_negative_prompt: bool = True
    supports_loras: bool = True
    context_parallel: bool = False  # its denoiser has a context-parallel plan in diffusers (worker groups split it)
    limits: LimitsReader = no_limits  # the sizes and frames a checkpoint's configs let it run (pipelines.limits)

    def frame_timing(self, fps: int, duration: float, motion: Motion) -> FrameTiming:
        """`native`: duration x native_fps frames (snapped to the frame rule) timed at native_fps, resampled into a
        file of the requested duration at `fps` (shorter only when snapping made the generated clip shorter; at the
        native rate itself the generated frames are the file);
        `stretch`: snap(fps x duration) frames generated and played at `fps`."""
        if motion == "stretch":
            frames = self.frame_rule.snap(round(fps * duration))
            return FrameTiming(generated_frames=frames, generated_fps=fps, num_frames=frames, fps=fps)
        generated = self.frame_rule.snap(round(self.native_fps * duration))
        if fps == self.native_fps:  # nothing to resample: the file holds the generated frames as they are
            return FrameTiming(generated_frames=generated, generated_fps=fps, num_frames=generated, fps=fps)
        return FrameTiming(
            generated_frames=generated,
            generated_fps=self.native_fps,
            num_frames=max(1, min(round(fps * duration), output_frame_count(generated, self.native_fps, fps))),
            fps=fps,
        )

    def call_kwargs(self, request: ResolvedRequest, image: Image) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "image": image,
            "height": request.height,
            "width": request.width,
            "num_frames": request.generated_frames,
            "num_inference_steps": request.steps,
            "guidance_scale": request.cfg,
            "output_type": "np",
        }
        if self.takes_prompt:
            kwargs["prompt"] = request.prompt
        if self.takes_negative_prompt:
            kwargs["negative_prompt"] = request.negative_prompt
        return kwargs

    def load_lora(self, pipe: Any, path: Path, adapter_name: str, hotswap: bool = False) -> None:
        """Load one LoRA file into the resident pipeline as the named adapter (`hotswap`: into that existing
        adapter's tensors, in place, as models.loras' slots do)."""
        pipe.load_lora_weights(str(path), adapter_name=adapter_name, hotswap=hotswap)
