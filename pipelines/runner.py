"""Run one resolved request on a loaded pipeline and return uint8 frames (F, H, W, 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Literal, Protocol, overload

import numpy as np
import torch
from PIL.Image import Image

from pipelines.conditioning import Conditioning, conditioning, install_condition_cache
from pipelines.decode_checks import checking, install_decode_check
from pipelines.family import Family
from pipelines.preview import PreviewMap, X0Capture
from pipelines.request import ResolvedRequest
from pipelines.stages import StageRecorder, install_stage_hooks, recording

StepCallback = Callable[[int, int], None]


class PreviewSink(Protocol):
    """Where a call's live previews go (pipelines.preview): asked at each step whether one is due."""

    def preview_due(self, step: int, total: int) -> bool: ...

    def preview(self, step: int, total: int, frames: np.ndarray) -> None: ...


@overload
def run_pipeline(
    pipe: Any,
    family: Family,
    request: ResolvedRequest,
    image: Image,
    on_step: StepCallback,
    *,
    recorder: StageRecorder | None = None,
    scope: Conditioning | None = None,
    preview: tuple[PreviewMap, PreviewSink] | None = None,
    between_decode_chunks: Callable[[], None] | None = None,
    decode: Literal[True] = True,
) -> np.ndarray: ...


@overload
def run_pipeline(
    pipe: Any,
    family: Family,
    request: ResolvedRequest,
    image: Image,
    on_step: StepCallback,
    *,
    recorder: StageRecorder | None = None,
    scope: Conditioning | None = None,
    preview: tuple[PreviewMap, PreviewSink] | None = None,
    between_decode_chunks: Callable[[], None] | None = None,
    decode: Literal[False],
) -> None: ...


def run_pipeline(
    pipe: Any,
    family: Family,
    request: ResolvedRequest,
    image: Image,
    on_step: StepCallback,
    *,
    recorder: StageRecorder | None = None,
    scope: Conditioning | None = None,
    preview: tuple[PreviewMap, PreviewSink] | None = None,
    between_decode_chunks: Callable[[], None] | None = None,
    decode: bool = True,
) -> np.ndarray | None:
    """`on_step(step, total)` runs after every denoising step; raising from it stops the pipeline there.

    The generator lives on the CPU so a seed gives the same noise on every device. With a `recorder`, the call's
    stage timings and step ends are recorded into it (pipelines.stages); the call ends when the frames are numpy.
    With a `scope`, conditioning goes through its cache and its time is added up there (pipelines.conditioning).
    With a `preview` (a model's map and a sink), the sink gets small frames of the predicted clean video at the
    steps it asks for (after `on_step`, so a stopped call sends none). `between_decode_chunks` runs before each
    chunk the VAE decoder decodes (pipelines.decode_checks); raising from it stops the call there. With `decode`
    False the call stops at the latents and returns None (a worker group's followers: only the leader decodes).
    """
    install_condition_cache(pipe)  # before the timing layer: a cache hit is then timed, as a near-zero stage
    install_stage_hooks(pipe)
    total = request.steps
    capture = X0Capture()

    def callback(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if recorder is not None:
            recorder.step()
        on_step(step + 1, total)
        if preview is not None and capture.latest is not None:
            preview_map, sink = preview
            if sink.preview_due(step + 1, total):
                sink.preview(step + 1, total, preview_map.render(capture.latest))
        return tensors

    device = getattr(pipe, "_execution_device", None) if recorder is not None or scope is not None else None
    if scope is not None:
        scope.device = device
    with ExitStack() as stack:
        stack.enter_context(recording(recorder, device))
        stack.enter_context(_maybe(scope))
        if preview is not None:
            stack.enter_context(capture.watching(pipe.scheduler))
        if between_decode_chunks is not None and install_decode_check(pipe):
            stack.enter_context(checking(between_decode_chunks))
        output = pipe(
            **{**family.call_kwargs(request, image), "output_type": "pt" if decode else "latent"},
            generator=torch.Generator("cpu").manual_seed(request.seed),
            callback_on_step_end=callback,
        )
        return frames_to_uint8(output) if decode else None


def frames_to_uint8(output: Any) -> np.ndarray:
    """The first video of a pipeline output as uint8 frames (F, H, W, 3).

    With `output_type="pt"` the frames (F, C, H, W, floats in 0..1) become uint8 on the device, so a quarter of the
    bytes cross to the host; the arithmetic is float32 either way, so the result equals the numpy path's.
    """
    first = output.frames[0]
    if isinstance(first, torch.Tensor):
        pixels = (first.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
        return pixels.contiguous().cpu().numpy()
    frames = np.asarray(first, dtype=np.float32)
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


@contextmanager
def _maybe(scope: Conditioning | None) -> Iterator[None]:
    if scope is None:
        yield
        return
    with conditioning(scope):
        yield
