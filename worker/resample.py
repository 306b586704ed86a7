"""Generated frames -> the file's frame rate (pipelines.timing), planned for the one ffmpeg pass that encodes.

Going down (e.g. Wan's 16 fps to 8), each output frame i is the generated frame nearest its timestamp i / fps,
picked here. Going up (16 to 30), ffmpeg's `minterpolate` renders the in-between frames by motion-compensated
interpolation while it encodes. Either way the file holds exactly `timing.num_frames` frames, and its first frame
is the first generated frame (so the poster is too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.timing import FrameTiming

# minterpolate emits frames up to the timestamp of its second-to-last input: with two clones of the last generated
# frame that is the generated clip's end, past the start of the last output frame (num_frames is rounded to the
# nearest whole frame); -frames:v cuts what follows.
TAIL_CLONES = 2
# Motion-compensated interpolation with minterpolate's default block matching (obmc, bilateral), which took about
# two thirds of the CPU time of mc_mode=aobmc:me_mode=bidir:vsbmc=1 at 768x768; scene cuts fall back to repeats.
INTERPOLATION = "mi_mode=mci"


@dataclass(frozen=True)
class EncoderInput:
    """What the encoder sends to ffmpeg: `frames` read at `fps`, with `output_params` turning them into the file."""

    frames: np.ndarray
    fps: int
    output_params: tuple[str, ...] = ()


def nearest_indices(generated_frames: int, generated_fps: int, fps: int, count: int) -> np.ndarray:
    """For each of `count` output frames at `fps`, the index of the generated frame nearest in time (a tie goes to
    the later frame), never past the last one."""
    steps = np.arange(count, dtype=np.int64)
    nearest = (2 * steps * generated_fps + fps) // (2 * fps)
    return np.minimum(nearest, generated_frames - 1)


def interpolation_params(fps: int, count: int) -> tuple[str, ...]:
    """ffmpeg output options: interpolate up to `fps` and stop after exactly `count` frames."""
    chain = f"tpad=stop_mode=clone:stop={TAIL_CLONES},minterpolate=fps={fps}:{INTERPOLATION}"
    return ("-vf", chain, "-frames:v", str(count))


def plan(frames: np.ndarray, timing: FrameTiming) -> EncoderInput:
    """How to encode generated `frames` into the file `timing` describes."""
    if len(frames) != timing.generated_frames:
        raise ValueError(
            f"the pipeline returned {len(frames)} frames but {timing.generated_frames} were requested; the family's "
            "frame rule does not match what its pipeline produces"
        )
    if not timing.resampled:
        return EncoderInput(frames, timing.fps)
    if timing.fps < timing.generated_fps:
        picked = nearest_indices(timing.generated_frames, timing.generated_fps, timing.fps, timing.num_frames)
        return EncoderInput(frames[picked], timing.fps)
    return EncoderInput(frames, timing.generated_fps, interpolation_params(timing.fps, timing.num_frames))
