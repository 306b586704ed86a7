"""Run one resolved request on a loaded pipeline and return uint8 frames (F, H, W, 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL.Image import Image

from pipelines.family import Family
from pipelines.request import ResolvedRequest

StepCallback = Callable[[int, int], None]


def run_pipeline(
    pipe: Any, family: Family, request: ResolvedRequest, image: Image, on_step: StepCallback
) -> np.ndarray:
    """`on_step(step, total)` runs after every denoising step; raising from it stops the pipeline there.

    The generator lives on the CPU so a seed gives the same noise on every device.
    """
    total = request.steps

    def callback(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(step + 1, total)
        return tensors

    output = pipe(
        **family.call_kwargs(request, image),
        generator=torch.Generator("cpu").manual_seed(request.seed),
        callback_on_step_end=callback,
    )
    frames = np.asarray(output.frames[0], dtype=np.float32)
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
