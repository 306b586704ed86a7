"""Stage timings of one pipeline call, measured at the pipeline's own methods.

Wrappers are installed once per pipeline object (`install_stage_hooks`, called by run_pipeline on first use) at
the stage points below: the methods every family's `__call__` goes through for text encoding, image conditioning
and VAE decoding. They time only while a `StageRecorder` is active in the calling context (a contextvar, so
another thread running another pipeline never records into this call), and cost one contextvar lookup otherwise.

A stage point is a place other layers can hook too (`install_layer`): a conditioning cache that skips
`encode_prompt` / `encode_image` for repeated inputs wraps the same points. Layers installed later run outside
earlier ones, so a cache installed before the stage hooks (e.g. at model load) runs inside the timing: a hit
is recorded as a near-zero stage instead of vanishing from the timeline.

A recorded call is cut into consecutive stages at the hook boundaries, so the stages add up to the call:

    call start -> text_encode -> image_encode -> denoise -> vae_decode -> frames_to_host -> call end
                 (end of the    (end of the last (first VAE  (last VAE     (run_pipeline's
                  last encode_   conditioning     decode     decode ends)  numpy frames ready)
                  prompt)        call)            starts)

Per-step timestamps (from run_pipeline's step callback) split `denoise` into steps. On CUDA every boundary
synchronizes the device first, so a stage's time is the device work it launched, not the launch alone.
"""

from __future__ import annotations

import functools
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

TEXT_ENCODE = "text_encode"
IMAGE_ENCODE = "image_encode"
DENOISE = "denoise"
VAE_DECODE = "vae_decode"
FRAMES_TO_HOST = "frames_to_host"
# In call order: the stages a recorded call is cut into.
CALL_STAGES = (TEXT_ENCODE, IMAGE_ENCODE, DENOISE, VAE_DECODE, FRAMES_TO_HOST)

TIMING_LAYER = "stage-timing"
LAYERS_ATTRIBUTE = "_npc_stage_layers"


@dataclass(frozen=True)
class StagePoint:
    """A method that a pipeline call goes through: on the pipeline itself (`component` None) or on a component."""

    stage: str
    component: str | None
    method: str

    def owner(self, pipe: Any) -> Any:
        return pipe if self.component is None else getattr(pipe, self.component, None)


STAGE_POINTS = (
    StagePoint(TEXT_ENCODE, None, "encode_prompt"),  # Wan, LTX-Video, CogVideoX
    StagePoint(IMAGE_ENCODE, None, "encode_image"),  # Wan 2.1 I2V's CLIP image embedding
    StagePoint(IMAGE_ENCODE, None, "_encode_image"),  # SVD's CLIP image embedding
    StagePoint(IMAGE_ENCODE, "vae", "encode"),  # the start frame's latents (every family)
    StagePoint(VAE_DECODE, "vae", "decode"),  # latents to pixels (SVD calls it once per chunk)
)

Wrap = Callable[[StagePoint, Callable[..., Any]], Callable[..., Any]]


def install_layer(pipe: Any, name: str, wrap: Wrap) -> bool:
    """Replace each stage point present on `pipe` by `wrap(point, current_method)`, once per layer name.

    Returns False when the layer was already installed on this pipeline object (nothing changes).
    """
    installed: tuple[str, ...] = getattr(pipe, LAYERS_ATTRIBUTE, ())
    if name in installed:
        return False
    for point in STAGE_POINTS:
        owner = point.owner(pipe)
        current = getattr(owner, point.method, None) if owner is not None else None
        if callable(current):
            setattr(owner, point.method, wrap(point, current))
    setattr(pipe, LAYERS_ATTRIBUTE, (*installed, name))
    return True


def _timed(point: StagePoint, inner: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(inner)
    def call(*args: Any, **kwargs: Any) -> Any:
        recorder = _active.get()
        if recorder is None:
            return inner(*args, **kwargs)
        with recorder.span(point.stage):
            return inner(*args, **kwargs)

    return call


def install_stage_hooks(pipe: Any) -> bool:
    """The timing layer (idempotent per pipeline object)."""
    return install_layer(pipe, TIMING_LAYER, _timed)


@dataclass(frozen=True)
class Span:
    stage: str
    start: float
    end: float


@dataclass(frozen=True)
class _Marks:
    """The boundaries of a recorded call (None: that stage has no hooked call in this pipeline)."""

    start: float
    text_end: float | None
    conditioning_end: float | None
    decode_start: float | None
    decode_end: float | None
    end: float

    @property
    def after_text(self) -> float:
        return self.start if self.text_end is None else self.text_end

    @property
    def denoise_start(self) -> float:
        return self.after_text if self.conditioning_end is None else self.conditioning_end


@dataclass
class StageRecorder:
    """The timeline of one pipeline call (perf_counter seconds). Fill it through `recording`; read `stages_ms`."""

    device: Any = None  # a torch.device; CUDA ones are synchronized at every boundary
    spans: list[Span] = field(default_factory=list)
    step_ends: list[float] = field(default_factory=list)
    call_start: float | None = None
    call_end: float | None = None
    _depth: int = field(default=0, init=False, repr=False)

    # -- filling ------------------------------------------------------------------------------------------
    def now(self) -> float:
        if getattr(self.device, "type", None) == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @contextmanager
    def span(self, stage: str) -> Iterator[None]:
        """Time a hooked call; a hooked call made inside another one belongs to the outer one."""
        self._depth += 1
        start = self.now() if self._depth == 1 else 0.0
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.spans.append(Span(stage, start, self.now()))

    def step(self) -> None:
        """A denoising step ended (run_pipeline's step callback)."""
        self.step_ends.append(self.now())

    # -- reading ------------------------------------------------------------------------------------------
    def _marks(self) -> _Marks:
        if self.call_start is None or self.call_end is None:
            raise RuntimeError("the recorder holds no finished call: fill it through recording(...)")

        def last_end(stage: str) -> float | None:
            ends = [span.end for span in self.spans if span.stage == stage]
            return max(ends) if ends else None

        decodes = [span for span in self.spans if span.stage == VAE_DECODE]
        return _Marks(
            start=self.call_start,
            text_end=last_end(TEXT_ENCODE),
            conditioning_end=last_end(IMAGE_ENCODE),
            decode_start=min(span.start for span in decodes) if decodes else None,
            decode_end=max(span.end for span in decodes) if decodes else None,
            end=self.call_end,
        )

    @property
    def wall_ms(self) -> float:
        marks = self._marks()
        return (marks.end - marks.start) * 1000

    def stages_ms(self) -> dict[str, float | None]:
        """The call cut into consecutive stages, in ms; None for a stage this pipeline has no hooked call for."""
        marks = self._marks()
        # Without a decode (latent output) denoising ends with the last step.
        denoise_end = (
            marks.decode_start if marks.decode_start is not None else max([marks.denoise_start, *self.step_ends])
        )
        host_start = marks.decode_end if marks.decode_end is not None else denoise_end
        return {
            TEXT_ENCODE: None if marks.text_end is None else (marks.text_end - marks.start) * 1000,
            IMAGE_ENCODE: None if marks.conditioning_end is None else (marks.conditioning_end - marks.after_text) * 1e3,
            DENOISE: (denoise_end - marks.denoise_start) * 1000,
            VAE_DECODE: None if marks.decode_start is None else (host_start - marks.decode_start) * 1000,
            FRAMES_TO_HOST: (marks.end - host_start) * 1000,
        }

    def step_seconds(self) -> list[float]:
        """Each denoising step's duration; the first runs from the end of conditioning (it carries warm-up)."""
        if not self.step_ends:
            return []
        marks = [self._marks().denoise_start, *self.step_ends]
        return [later - earlier for earlier, later in itertools.pairwise(marks)]

    def steady_step_seconds(self) -> float | None:
        """Median step duration, leaving out the first step when there are two or more."""
        steps = self.step_seconds()
        steady = steps[1:] if len(steps) >= 2 else steps
        return statistics.median(steady) if steady else None


_active: ContextVar[StageRecorder | None] = ContextVar("npc_stage_recorder", default=None)


def active_recorder() -> StageRecorder | None:
    """The recorder of the pipeline call running in this context, if any."""
    return _active.get()


@contextmanager
def recording(recorder: StageRecorder | None, device: Any = None) -> Iterator[None]:
    """Make `recorder` the active one for a call in this context and mark the call's start and end.

    `device` (the pipeline's execution device) is synchronized at every boundary when it is a CUDA device.
    """
    if recorder is None:
        yield
        return
    if device is not None:
        recorder.device = device
    token = _active.set(recorder)
    recorder.spans.clear()
    recorder.step_ends.clear()
    recorder.call_end = None
    recorder.call_start = recorder.now()
    try:
        yield
    finally:
        try:
            recorder.call_end = recorder.now()
        finally:
            _active.reset(token)
