"""Run one resolved request on a loaded pipeline and return uint8 frames (F, H, W, 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL.Image import Image

from pipelines.family import Family
from pipelines.request import ResolvedRequest
from pipelines.stages import StageRecorder, install_stage_hooks, recording

StepCallback = Callable[[int, int], None]


def run_pipeline(
    pipe: Any,
    family: Family,
    request: ResolvedRequest,
    image: Image,
    on_step: StepCallback,
    *,
    recorder: StageRecorder | None = None,
) -> np.ndarray:
    """`on_step(step, total)` runs after every denoising step; raising from it stops the pipeline there.

    The generator lives on the CPU so a seed gives the same noise on every device. With a `recorder`, the call's
    stage timings and step ends are recorded into it (pipelines.stages); the call ends when the frames are numpy.
    """
    install_stage_hooks(pipe)
    total = request.steps

    def callback(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if recorder is not None:
            recorder.step()
        on_step(step + 1, total)
        return tensors

    device = getattr(pipe, "_execution_device", None) if recorder is not None else None
    with recording(recorder, device):
        output = pipe(
            **family.call_kwargs(request, image),
            generator=torch.Generator("cpu").manual_seed(request.seed),
            callback_on_step_end=callback,
        )
        return frames_to_uint8(output)


def frames_to_uint8(output: Any) -> np.ndarray:
    """The first video of a pipeline output (`output_type="np"`, floats in 0..1) as uint8 frames."""
    frames = np.asarray(output.frames[0], dtype=np.float32)
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
