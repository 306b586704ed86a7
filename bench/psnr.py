"""How far a lossy speed setting moves the output: PSNR of a row's frames against the baseline row's (the `catalog`
setting of the same model and preset), run by run on the same seeds, pooled over every frame of every measured run.

In-process and stock runs keep the frames the pipeline returned (uint8, before encoding: the codec adds nothing);
runs through the queue exist only as MP4s, so both sides of a pair are then decoded from their MP4s (the codec's
own loss is then part of the figure). Identical frames give +inf (written "inf" in results files).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

PEAK = 255.0
BASELINE_SETTING = "catalog"


@dataclass(frozen=True)
class Output:
    """Where one measured run's frames can be read back: the raw frames (.npy) and/or its MP4."""

    frames: Path | None
    video: Path | None


def read_frames(output: Output, raw: bool) -> np.ndarray:
    """The run's frames: the saved array (`raw`), or its MP4 decoded (T, H, W, 3) uint8."""
    if raw:
        assert output.frames is not None
        return np.asarray(np.load(output.frames))
    assert output.video is not None
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(output.video))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(frame, dtype=np.uint8).reshape(height, width, 3) for frame in reader])


def squared_error(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Sum of squared differences and the number of values compared; frames must have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"frames of shape {a.shape} and {b.shape} cannot be compared")
    difference = a.astype(np.float64) - b.astype(np.float64)
    return float(np.square(difference).sum()), int(difference.size)


def psnr_db(total_squared_error: float, count: int) -> float:
    """10 log10(255^2 / MSE); +inf when the error is zero."""
    if count <= 0:
        raise ValueError("no values to compare")
    mse = total_squared_error / count
    return math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse)


def row_psnr(runs: list[Output], baseline: list[Output]) -> float | None:
    """PSNR of a row's measured runs against the baseline's runs of the same index (the same seed), pooled;
    None when the frames cannot be compared (no output kept, or other sizes or frame counts)."""
    pairs = list(zip(runs, baseline, strict=False))
    if not pairs:
        return None
    raw = all(run.frames is not None and base.frames is not None for run, base in pairs)
    if not raw and not all(run.video is not None and base.video is not None for run, base in pairs):
        return None
    total, count = 0.0, 0
    try:
        for run, base in pairs:
            error, values = squared_error(read_frames(run, raw), read_frames(base, raw))
            total += error
            count += values
    except ValueError as exc:
        log.warning("psnr_db not computed: %s", exc)
        return None
    return psnr_db(total, count)


def json_psnr(value: float | None) -> float | str | None:
    """+inf as the string "inf" (JSON has no infinity), rounded to 0.01 dB otherwise."""
    if value is None:
        return None
    return "inf" if math.isinf(value) else round(value, 2)
