"""MP4 encoding with imageio-ffmpeg's ffmpeg, decoded back with the same binary; the JPEG poster."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.support.video import decode_mp4
from worker.encode import MP4_CONTENT_TYPE, THUMBNAIL_CONTENT_TYPE, encode_mp4, write_thumbnail


def gradient_frames(count: int, height: int, width: int) -> np.ndarray:
    """Smooth frames that differ over time (flat colour blocks survive H.264 well)."""
    frames = np.zeros((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        frames[index, :, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
        frames[index, :, :, 1] = np.uint8(index * 255 // max(1, count - 1))
        frames[index, :, :, 2] = 128
    return frames


@pytest.mark.parametrize(("count", "height", "width", "fps"), [(9, 32, 48, 8), (5, 64, 64, 24), (1, 16, 32, 12)])
def test_encode_then_decode_keeps_count_size_and_fps(tmp_path, count, height, width, fps):
    frames = gradient_frames(count, height, width)
    path = tmp_path / "clip.mp4"
    encode_mp4(frames, fps, path)
    meta, decoded = decode_mp4(path)
    assert decoded.shape == (count, height, width, 3)
    assert tuple(meta["size"]) == (width, height)
    assert meta["fps"] == pytest.approx(fps)
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 6  # lossy, but the same picture


def test_mp4_is_h264_with_faststart(tmp_path):
    path = tmp_path / "clip.mp4"
    encode_mp4(gradient_frames(5, 32, 32), 8, path)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert b"avc1" in data
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    assert MP4_CONTENT_TYPE == "video/mp4"


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((3, 16, 16, 3), dtype=np.float32),
        np.zeros((3, 16, 16, 3), dtype=np.uint16),
        np.zeros((3, 16, 16, 4), dtype=np.uint8),
        np.zeros((3, 16, 16, 1), dtype=np.uint8),
        np.zeros((0, 16, 16, 3), dtype=np.uint8),
        np.zeros((16, 16, 3), dtype=np.uint8),
    ],
    ids=["float32", "uint16", "rgba", "gray", "no-frames", "3d"],
)
def test_rejects_wrong_dtype_or_shape(tmp_path, frames):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match=r"expected uint8 frames|values to unpack"):
        encode_mp4(frames, 8, path)
    assert not path.exists()


def test_thumbnail_is_a_jpeg_of_the_first_frame(tmp_path):
    frames = gradient_frames(4, 32, 48)
    path = tmp_path / "poster.jpg"
    write_thumbnail(frames[0], path)
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(data)) as poster:
        assert poster.format == "JPEG"
        assert poster.size == (48, 32)
        pixels = np.asarray(poster.convert("RGB")).astype(int)
    assert np.abs(pixels - frames[0]).mean() < 4
    assert np.abs(pixels - frames[-1]).mean() > 40  # not some other frame
    assert THUMBNAIL_CONTENT_TYPE == "image/jpeg"
