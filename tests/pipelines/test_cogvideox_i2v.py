"""CogVideoX I2V end to end: 16-pixel grid, 8k+1 frames (what its VAE decodes back exactly)."""

from __future__ import annotations

import pytest

from models.tiny import build_cogvideox_i2v
from tests.support.jobs import envelope
from worker.jobs import JobRunner


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, family_runner) -> JobRunner:
    model = tmp_path_factory.mktemp("cogvideox-model") / "model"
    build_cogvideox_i2v(model, seed=0)
    return family_runner("cogvideox-i2v", model)


@pytest.mark.parametrize(
    ("fps", "duration", "frames"),
    [
        (8, 1.5, 9),  # 12 frames: 4k+1 would ask for 13, which decodes to 16
        (16, 1.0, 17),
    ],
)
def test_snaps_to_the_grid_and_frames_that_decode_back_exactly(
    runner: JobRunner, video_of, fps: int, duration: float, frames: int
) -> None:
    result = runner.run(envelope(f"cog-{frames}", width=70, height=52, fps=fps, duration=duration))
    assert (result.width, result.height, result.num_frames, result.fps) == (64, 48, frames, fps)
    video_of(result)
