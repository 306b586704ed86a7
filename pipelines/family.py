"""What a model family declares: its diffusers class, grids, native fps, inputs, and the call mapping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.grid import FrameRule

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image

    from pipelines.request import ResolvedRequest


@dataclass(frozen=True)
class Family:
    """One image-to-video model family.

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

    def call_kwargs(self, request: ResolvedRequest, image: Image) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "image": image,
            "height": request.height,
            "width": request.width,
            "num_frames": request.num_frames,
            "num_inference_steps": request.steps,
            "guidance_scale": request.cfg,
            "output_type": "np",
        }
        if self.takes_prompt:
            kwargs["prompt"] = request.prompt
        if self.takes_negative_prompt:
            kwargs["negative_prompt"] = request.negative_prompt
        return kwargs

    def load_lora(self, pipe: Any, path: Path, adapter_name: str) -> None:
        """Load one LoRA file into the resident pipeline as the named adapter."""
        pipe.load_lora_weights(str(path), adapter_name=adapter_name)
