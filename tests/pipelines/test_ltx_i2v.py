"""LTX-Video I2V end to end: 32-pixel grid, 8k+1 frames, the rate frames are generated at passed as `frame_rate`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.support.jobs import envelope
from worker.job import SilentHooks
from worker.payload import parse_envelope
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def runner(model_dir, family_runner) -> Runtime:
    return family_runner("ltx-i2v", model_dir("ltx-i2v"))


def test_snaps_to_the_32_pixel_grid_and_8k_plus_1_frames(runner: Runtime, video_of) -> None:
    # 24 fps x 0.5 s = 12 frames: 4k+1 would give 13, which LTX's 8x temporal VAE cannot produce
    result = runner.run(envelope(width=100, height=70, fps=24, duration=0.5))
    assert (result.width, result.height, result.num_frames, result.fps) == (96, 64, 9, 24)
    video_of(result)


def _generated(runner: Runtime, generated_fps: int) -> np.ndarray:
    """The pipeline's frames before encoding, generated at `generated_fps` (24 native, the job's fps stretched)."""
    prepared = runner.preparer.prepare(parse_envelope(envelope(fps=24, duration=0.375)), SilentHooks())
    prepared.request = replace(prepared.request, generated_fps=generated_fps)
    return runner.models.generate(prepared, SilentHooks())


def test_the_generation_rate_is_passed_to_the_model_as_frame_rate(runner: Runtime) -> None:
    slow, native = _generated(runner, 16), _generated(runner, 24)
    # same seed, size and 9 frames: only the frame-rate conditioning of LTX's RoPE differs
    assert slow.shape == native.shape == (9, 64, 64, 3)
    assert not np.array_equal(slow, native)
