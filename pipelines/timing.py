"""Frame timing: how many frames a model generates, at which rate its motion is timed, and what the file holds.

A model learns motion at the frame rate of its training clips (its family's `native_fps`): asked for N frames it
renders about N / native_fps seconds of motion, whatever rate they are played at. `native` timing (the default)
therefore generates duration x native_fps frames and the encoder resamples them to the requested fps (worker.resample);
`stretch` generates fps x duration frames and plays them at fps, so the motion runs at fps / native_fps of its
speed (the behaviour before contract 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Motion = Literal["native", "stretch"]
DEFAULT_MOTION: Motion = "native"


@dataclass(frozen=True)
class FrameTiming:
    """What the pipeline generates (`generated_frames`, timed at `generated_fps`) and what the encoded file
    holds (`num_frames` played at `fps`)."""

    generated_frames: int
    generated_fps: int
    num_frames: int
    fps: int

    @property
    def resampled(self) -> bool:
        return self.generated_fps != self.fps


def output_frame_count(generated_frames: int, generated_fps: int, fps: int) -> int:
    """Frames at `fps` lasting as long as the generated clip: round(generated_frames / generated_fps x fps), at
    least one (exact rational arithmetic, Python's round: halves go to the even count)."""
    return max(1, round(Fraction(generated_frames * fps, generated_fps)))
