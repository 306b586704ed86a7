"""Live previews as producers get them: a small animated WebP of the predicted clean video (pipelines.preview makes
the frames) in a `job:preview` event, at the first step and then at most once per `preview_interval_ms`.

The device only makes the frames (a small matrix product, a few kilobytes copied off the device); encoding the
image and writing the event happen on the `preview` thread, so a preview costs the device almost nothing.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
from PIL import Image

WEBP_QUALITY = 60
# libwebp's fastest method: a preview is seen once, and method 4 (Pillow's default) took about twice the CPU time
# (5.7 ms against 3.2 ms for 13 frames of 64x64) for files 15% smaller; on a CPU device that time is taken from the
# steps (the encoder releases the GIL, but shares the cores).
WEBP_METHOD = 0
# No key frames after the first: each frame is coded against the one before (a preview is played from its start),
# and libwebp does not encode every frame twice to choose (3.0 against 5.0 ms for 13 frames of 64x64).
WEBP_KEYFRAMES = {"kmin": 0, "kmax": 0}
PREVIEW_CPU_SHARE = 0.02  # of a job's time, at most, that encoding its previews may take


def encode_webp(frames: np.ndarray, fps: float) -> bytes:
    """uint8 (F, H, W, 3) as an animated WebP (a still one for one frame), looping."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    duration_ms = max(1, round(1000 / fps)) if fps > 0 else 100
    images[0].save(
        buffer, format="WEBP", save_all=len(images) > 1, append_images=images[1:], duration=duration_ms, loop=0,
        quality=WEBP_QUALITY, method=WEBP_METHOD, **WEBP_KEYFRAMES,
    )  # fmt: skip
    return buffer.getvalue()


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class PreviewThrottle:
    """When a job's next preview is due: the first step always; then at most one per interval, never while the last
    one is still being encoded, and no sooner than its encode's CPU time over PREVIEW_CPU_SHARE after it. Where the
    denoiser has every core (a CPU device), an encode takes its time from the steps: 5 ms for 13 frames of 64x64,
    6% of a 90 ms step; the budget keeps previews under 2% of a job's time there (one per three or four steps), and
    costs nothing on a GPU node, whose encodes (on otherwise idle cores) are spaced by the interval anyway."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_s = interval_ms / 1000
        self._last = float("-inf")
        self._not_before = float("-inf")
        self._encoding = False  # set on the device thread, cleared on the preview thread

    def due(self, step: int) -> bool:
        now = time.monotonic()
        if step == 1 or (not self._encoding and now - self._last >= self.interval_s and now >= self._not_before):
            self._last = now
            self._encoding = True
            return True
        return False

    def encoded(self, cpu_s: float) -> None:
        """The preview due last is encoded and sent, taking `cpu_s` of its thread's CPU time."""
        self._not_before = self._last + cpu_s / PREVIEW_CPU_SHARE
        self._encoding = False
