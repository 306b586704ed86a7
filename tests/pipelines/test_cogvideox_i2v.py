"""CogVideoX I2V end to end: 16-pixel grid, 8k+1 frames (what its VAE decodes back exactly)."""

from __future__ import annotations

import pytest

from tests.support.jobs import envelope
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def runner(model_dir, family_runner) -> Runtime:
    return family_runner("cogvideox-i2v", model_dir("cogvideox-i2v"))


@pytest.mark.parametrize(
    ("fps", "duration", "generated", "frames"),
    [
        (16, 0.75, 9, 9),  # 12 frames at 16 fps: 4k+1 would ask for 13, which decodes to 16
        (8, 1.0, 17, 8),  # 17 generated at 16 fps, resampled to 8 fps
    ],
)
def test_snaps_to_the_grid_and_frames_that_decode_back_exactly(
    runner: Runtime, video_of, fps: int, duration: float, generated: int, frames: int
) -> None:
    result = runner.run(envelope(f"cog-{frames}", width=70, height=52, fps=fps, duration=duration))
    assert (result.width, result.height, result.num_frames, result.fps) == (64, 48, frames, fps)
    assert (result.generated_frames, result.generated_fps) == (generated, 16)  # the encoder checks it got these
    video_of(result)
