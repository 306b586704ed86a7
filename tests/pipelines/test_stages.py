"""Stage hooks on the real tiny pipelines of every family: each stage a family has is recorded, the stages cut the
recorded call into consecutive parts in call order (they add up to it by construction, and it lies inside the
caller's own measurement), the active recorder is per context, and another layer can wrap the same points. How long
the stages take is the bench's business: nothing here compares two clocks' durations."""

from __future__ import annotations

import inspect
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from npc_video_client.contract import JobEnvelope
from pipelines.conditioning import CACHE_LAYER
from pipelines.runner import run_pipeline
from pipelines.stages import (
    CALL_STAGES,
    FRAMES_TO_HOST,
    IMAGE_ENCODE,
    TEXT_ENCODE,
    TIMING_LAYER,
    VAE_DECODE,
    StagePoint,
    StageRecorder,
    active_recorder,
    install_layer,
    recording,
)
from tests.support.jobs import envelope
from tests.support.models import FAMILIES
from worker.job import SilentHooks
from worker.runtime import Runtime

# SVD has no text input; every family encodes the start frame with its VAE.
WITHOUT_TEXT = {"svd"}


@pytest.fixture(scope="module")
def model_dirs(model_dir: Callable[..., Path]) -> dict[str, Path]:
    return {family: model_dir(family) for family in FAMILIES}


@pytest.fixture(scope="module")
def wan_runner(model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]) -> Runtime:
    """A tiny Wan 2.1 runner whose pipeline gets only the timing layer (run_pipeline installs it)."""
    return family_runner("wan-i2v", model_dirs["wan-i2v"])


def _call(runner: Runtime, recorder: StageRecorder | None, **params: Any) -> tuple[tuple[float, float], list[int]]:
    """One pipeline call of a job on the runner's model; returns when it started and ended (perf_counter seconds)
    and the steps reported."""
    prepared = runner.preparer.prepare(JobEnvelope.model_validate(envelope(**params)), SilentHooks())
    loaded = runner.pool.get(prepared.request.model)
    steps: list[int] = []
    started = time.perf_counter()
    run_pipeline(
        loaded.pipe,
        loaded.family,
        prepared.request,
        prepared.image,
        lambda step, _total: steps.append(step),
        recorder=recorder,
    )
    return (started, time.perf_counter()), steps


@pytest.mark.parametrize("family", FAMILIES)
def test_every_stage_is_recorded_in_call_order_and_the_stages_make_up_the_call(
    family: str, model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]
) -> None:
    runner = family_runner(family, model_dirs[family])
    recorder = StageRecorder()
    (started, ended), steps = _call(runner, recorder, steps=3)

    stages = recorder.stages_ms()
    expected = set(CALL_STAGES) - ({TEXT_ENCODE} if family in WITHOUT_TEXT else set())
    assert {stage for stage, value in stages.items() if value is not None} == expected
    assert all(value >= 0 for value in stages.values() if value is not None), stages
    # consecutive parts of the recorded call: together they are the call, which lies inside the caller's measurement
    assert sum(value for value in stages.values() if value is not None) == pytest.approx(recorder.wall_ms)
    assert recorder.call_start is not None and recorder.call_end is not None
    assert started <= recorder.call_start <= recorder.call_end <= ended
    # the hooked calls themselves were seen, in call order: conditioning (CLIP and/or VAE encode), the denoising
    # steps, decoding
    seen = Counter(span.stage for span in recorder.spans)
    assert seen[IMAGE_ENCODE] >= 1 and seen[VAE_DECODE] >= 1
    assert seen[TEXT_ENCODE] == (0 if family in WITHOUT_TEXT else 1)
    spans = recorder.spans
    assert all(recorder.call_start <= span.start <= span.end <= recorder.call_end for span in spans)
    conditioning_end = max(span.end for span in spans if span.stage in (TEXT_ENCODE, IMAGE_ENCODE))
    decode_start = min(span.start for span in spans if span.stage == VAE_DECODE)
    # one timestamp per denoising step, in order, between conditioning and decoding
    assert steps == [1, 2, 3] and len(recorder.step_ends) == 3
    assert conditioning_end <= recorder.step_ends[0] and recorder.step_ends[-1] <= decode_start
    assert recorder.step_ends == sorted(recorder.step_ends)
    durations = recorder.step_seconds()
    assert len(durations) == 3 and all(seconds >= 0 for seconds in durations)
    denoise_ms = stages["denoise"]
    assert denoise_ms is not None and sum(durations) * 1000 <= denoise_ms * (1 + 1e-9)
    assert recorder.steady_step_seconds() == pytest.approx(statistics.median(durations[1:]))  # first step left out


def test_hooks_are_installed_once_per_pipeline_and_time_nothing_without_a_recorder(wan_runner: Runtime) -> None:
    runner = wan_runner
    _call(runner, None)
    _call(runner, None)
    pipe = runner.pool.get("tiny").pipe
    assert pipe._npc_stage_layers == (CACHE_LAYER, TIMING_LAYER)  # run_pipeline puts the cache inside the timing
    for owner, name in ((pipe, "encode_prompt"), (pipe, "encode_image"), (pipe.vae, "encode"), (pipe.vae, "decode")):
        inner = inspect.unwrap(getattr(owner, name), stop=inspect.ismethod)  # the class's own method, bound
        assert inner.__self__ is owner and inner.__func__ is getattr(type(owner), name)
    assert active_recorder() is None


def test_the_active_recorder_belongs_to_its_context_not_to_other_threads(wan_runner: Runtime) -> None:
    runner = wan_runner
    _call(runner, None)  # installs the hooks (once)
    pipe = runner.pool.get("tiny").pipe

    def encode() -> None:
        pipe.encode_prompt(prompt="a face", do_classifier_free_guidance=False, device=torch.device("cpu"))

    recorder = StageRecorder()
    with recording(recorder):
        assert active_recorder() is recorder
        other = threading.Thread(target=encode)  # another thread: its own context, no recorder
        other.start()
        other.join()
        encode()
    assert [span.stage for span in recorder.spans] == [TEXT_ENCODE]
    assert active_recorder() is None
    assert recorder.stages_ms()[FRAMES_TO_HOST] is not None


def test_another_layer_wraps_the_same_points_inside_the_timing(
    model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]
) -> None:
    """What a conditioning cache will do: installed at load (before the timing layer), it runs inside it."""
    runner = family_runner("wan-i2v", model_dirs["wan-i2v"])
    pipe = runner.pool.get("tiny").pipe
    calls: Counter[str] = Counter()

    def probe(point: StagePoint, inner: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[f"{point.component or 'pipe'}.{point.method}"] += 1
            assert active_recorder() is not None  # inside the timing layer's recorded call
            return inner(*args, **kwargs)

        return call

    assert install_layer(pipe, "probe", probe)
    assert not install_layer(pipe, "probe", probe)  # once per layer name
    recorder = StageRecorder()
    _call(runner, recorder)
    assert pipe._npc_stage_layers == ("probe", CACHE_LAYER, TIMING_LAYER)
    assert calls == {"pipe.encode_prompt": 1, "pipe.encode_image": 1, "vae.encode": 1, "vae.decode": 1}
    assert recorder.stages_ms()[TEXT_ENCODE] is not None
