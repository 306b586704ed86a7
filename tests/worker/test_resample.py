"""Resampling generated frames to the file's rate while encoding: nearest frames going down, motion-compensated
interpolation going up, always exactly the frame count the result reports (decoded back with the same ffmpeg)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.timing import FrameTiming, output_frame_count
from tests.support.video import decode_mp4
from worker.encode import encode_video
from worker.resample import nearest_indices, plan

SIDE = 96
SQUARE = 24  # the moving square's side
SPEED = 6  # pixels per generated frame


def numbered_frames(count: int) -> np.ndarray:
    """Flat grey frames whose level tells which generated frame a decoded frame is."""
    levels = 16 + 4 * np.arange(count)
    return np.broadcast_to(levels[:, None, None, None], (count, 32, 32, 3)).astype(np.uint8)


def frame_number(frame: np.ndarray) -> int:
    return round((float(frame.mean()) - 16) / 4)


def square_at(x: float) -> np.ndarray:
    """A white square on black whose left edge is at `x` (fractional edges are grey, as a moving camera sees)."""
    columns = np.clip(np.minimum(np.arange(SIDE) + 1 - x, x + SQUARE - np.arange(SIDE)), 0, 1)
    frame = np.zeros((SIDE, SIDE, 3), dtype=np.float64)
    frame[36 : 36 + SQUARE, :, :] = columns[None, :, None]
    return (frame * 255).round().astype(np.uint8)


def moving_square(count: int) -> np.ndarray:
    return np.stack([square_at(8 + SPEED * index) for index in range(count)])


def timing(generated: int, generated_fps: int, fps: int) -> FrameTiming:
    return FrameTiming(generated, generated_fps, output_frame_count(generated, generated_fps, fps), fps)


def encoded(frames: np.ndarray, frame_timing: FrameTiming, tmp_path) -> tuple[float, np.ndarray]:
    path = tmp_path / "clip.mp4"
    encode_video(frames, frame_timing, path)
    meta, decoded = decode_mp4(path)
    return float(meta["fps"]), decoded


# -- going down: the generated frame nearest each output timestamp -------------------------------------------


@pytest.mark.parametrize(
    ("generated", "generated_fps", "fps", "expected"),
    [
        (17, 16, 8, [0, 2, 4, 6, 8, 10, 12, 14]),  # 17 / 16 s at 8 fps: round(8.5) = 8 frames
        (9, 16, 12, [0, 1, 3, 4, 5, 7, 8]),  # output frame i at i / 12 s: generated frame 0, 1.33, 2.67, 4 ...
        (7, 24, 16, [0, 2, 3, 5, 6]),  # 1.5 and 4.5 are ties: the later frame
        (21, 7, 5, [0, 1, 3, 4, 6, 7, 8, 10, 11, 13, 14, 15, 17, 18, 20]),  # SVD's 7 fps down to 5
    ],
)
def test_nearest_indices_pick_the_generated_frame_nearest_each_output_time(generated, generated_fps, fps, expected):
    count = output_frame_count(generated, generated_fps, fps)
    assert nearest_indices(generated, generated_fps, fps, count).tolist() == expected


def test_nearest_indices_never_run_past_the_last_generated_frame():
    # 5 frames at 16 fps last 0.3125 s: 3 frames at 10 fps; a 4th would sit at 0.3 s = frame 4.8, held at 4
    assert nearest_indices(5, 16, 10, 4).tolist() == [0, 2, 3, 4]


@pytest.mark.parametrize(("generated", "generated_fps", "fps"), [(17, 16, 8), (49, 16, 12), (25, 24, 16)])
def test_going_down_drops_frames_by_nearest_timestamp(tmp_path, generated, generated_fps, fps):
    frame_timing = timing(generated, generated_fps, fps)
    rate, decoded = encoded(numbered_frames(generated), frame_timing, tmp_path)
    assert rate == pytest.approx(fps)
    assert len(decoded) == frame_timing.num_frames
    expected = nearest_indices(generated, generated_fps, fps, frame_timing.num_frames).tolist()
    assert [frame_number(frame) for frame in decoded] == expected


# -- going up: motion-compensated in-between frames ----------------------------------------------------------


@pytest.mark.parametrize(("generated", "generated_fps", "fps"), [(9, 16, 30), (17, 16, 24), (5, 7, 24), (1, 16, 30)])
def test_going_up_gives_exactly_the_planned_frames_at_the_output_rate(tmp_path, generated, generated_fps, fps):
    frame_timing = timing(generated, generated_fps, fps)
    frames = moving_square(generated)
    rate, decoded = encoded(frames, frame_timing, tmp_path)
    assert rate == pytest.approx(fps)
    assert decoded.shape == (frame_timing.num_frames, SIDE, SIDE, 3)
    assert frame_timing.num_frames > generated
    assert np.abs(decoded[0].astype(int) - frames[0]).mean() < 3  # the first frame (the poster) is unchanged


def test_going_up_interpolates_motion_rather_than_repeating_or_blending(tmp_path):
    # 16 -> 32 fps: odd output frames lie halfway between two generated frames, the square 2 px further on
    frames = moving_square(9)
    frame_timing = timing(9, 16, 32)
    assert frame_timing.num_frames == 18
    _, decoded = encoded(frames, frame_timing, tmp_path)
    # (the first in-between frames are rougher: the predictive motion search settles over the first few frames)
    for index in (5, 7, 9, 11, 13):
        between = decoded[index].astype(int)
        before, after = frames[index // 2].astype(int), frames[index // 2 + 1].astype(int)
        moved = square_at(8 + SPEED * (index / 2)).astype(int)
        assert np.abs(between - moved).mean() < 1, index
        for other in (before, after, (before + after) / 2):  # not a repeated frame, not a cross-fade
            assert np.abs(between - other).mean() > 3, index
    for index in (2, 6, 10):  # even output frames are the generated frames themselves
        assert np.abs(decoded[index].astype(int) - frames[index // 2]).mean() < 3


# -- no resampling, and the plan's checks ---------------------------------------------------------------------


def test_at_the_generated_rate_every_frame_is_kept(tmp_path):
    frames = numbered_frames(9)
    rate, decoded = encoded(frames, timing(9, 16, 16), tmp_path)
    assert rate == pytest.approx(16)
    assert [frame_number(frame) for frame in decoded] == list(range(9))


def test_a_frame_count_other_than_the_generated_one_is_refused():
    with pytest.raises(ValueError, match="returned 8 frames but 9 were requested"):
        plan(numbered_frames(8), timing(9, 16, 8))


@pytest.mark.parametrize(
    ("generated", "generated_fps", "fps", "count"),
    [(49, 16, 8, 24), (49, 16, 30, 92), (73, 24, 30, 91), (21, 7, 24, 72), (1, 24, 1, 1), (17, 16, 8, 8)],
)
def test_output_frame_count_lasts_as_long_as_the_generated_clip(generated, generated_fps, fps, count):
    assert output_frame_count(generated, generated_fps, fps) == count
