"""Wan 2.2 TI2V-5B end to end: Wan 2.2 VAE (16x), 32-pixel grid, 4k+1 frames, per-token timesteps."""

from __future__ import annotations

import pytest

from tests.support.jobs import envelope
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def runner(model_dir, family_runner) -> Runtime:
    return family_runner("wan22-ti2v", model_dir("wan22-ti2v"))


def test_snaps_to_the_32_pixel_grid_and_4k_plus_1_frames(runner: Runtime, video_of) -> None:
    result = runner.run(envelope(width=100, height=60, fps=24, duration=0.5))
    assert (result.width, result.height, result.num_frames, result.fps) == (96, 64, 13, 24)
    video_of(result)
    pipe = runner.pool.get("tiny").pipe
    assert pipe.config.expand_timesteps and pipe.image_encoder is None
    assert pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1] == 32


def test_the_prompt_changes_the_video(runner: Runtime, video_of) -> None:
    first = video_of(runner.run(envelope("a", prompt="w1 w2 w3")))
    second = video_of(runner.run(envelope("b", prompt="w7 w8 w9")))
    assert first.shape == second.shape
    assert (first != second).any()
