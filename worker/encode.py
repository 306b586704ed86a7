"""Frames -> browser-playable MP4 (H.264, yuv420p, +faststart) with imageio-ffmpeg's ffmpeg, and a poster."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from pipelines.timing import FrameTiming
from worker.resample import plan

MP4_CONTENT_TYPE = "video/mp4"
THUMBNAIL_CONTENT_TYPE = "image/jpeg"


def encode_mp4(frames: np.ndarray, fps: int, path: Path, crf: int = 20) -> None:
    """Write uint8 frames (F, H, W, 3) played at `fps`; H and W must be even (model grids are multiples of 16)."""
    _check(frames)
    _write(frames, fps, path, crf)


def encode_video(frames: np.ndarray, timing: FrameTiming, path: Path, crf: int = 20) -> None:
    """Write generated uint8 frames (F, H, W, 3) as the file `timing` describes: exactly `timing.num_frames`
    frames at `timing.fps`, resampled from `timing.generated_fps` in the same ffmpeg pass (worker.resample)."""
    _check(frames)
    source = plan(frames, timing)
    _write(source.frames, source.fps, path, crf, source.output_params)


def _check(frames: np.ndarray) -> None:
    count, _height, _width, channels = frames.shape
    if count == 0 or channels != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (F>0, H, W, 3), got {frames.dtype} {frames.shape}")


def _write(frames: np.ndarray, fps: int, path: Path, crf: int, output_params: Sequence[str] = ()) -> None:
    """`fps` is the rate ffmpeg reads the frames at; `output_params` may filter them into another rate."""
    _count, height, width, _channels = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=2,
        output_params=[*output_params, "-crf", str(crf), "-preset", "fast", "-movflags", "+faststart"],
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def write_thumbnail(frame: np.ndarray, path: Path) -> None:
    Image.fromarray(frame).save(path, format="JPEG", quality=88)
