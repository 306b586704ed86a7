"""Decode stored MP4s back with the same ffmpeg, to check what producers will actually play."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import imageio_ffmpeg
import numpy as np


def path_of(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def decode_mp4(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta: dict[str, Any] = reader.__next__()
    width, height = meta["size"]
    frames = [np.frombuffer(frame, dtype=np.uint8).reshape(height, width, 3) for frame in reader]
    return meta, np.stack(frames)
