"""Previews as producers get them (worker.previews): the animated WebP, and when a job's next preview is due."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from worker.previews import PREVIEW_CPU_SHARE, PreviewThrottle, encode_webp


def test_the_preview_is_an_animated_webp_of_every_frame_at_the_clips_rate() -> None:
    ramp = np.linspace(0, 255, 13 * 16 * 24 * 3).reshape(13, 16, 24, 3).astype(np.uint8)
    image = Image.open(io.BytesIO(encode_webp(ramp, fps=16.0)))
    assert (image.format, image.size, image.n_frames) == ("WEBP", (24, 16), 13)
    image.seek(12)  # the last frame decodes (each is coded against the one before)
    image.load()
    assert image.info["duration"] == round(1000 / 16)
    assert np.abs(np.asarray(image.convert("RGB"), dtype=int) - ramp[12]).mean() < 8


def test_the_first_step_is_always_due_then_never_while_the_last_preview_is_encoding() -> None:
    throttle = PreviewThrottle(interval_ms=0)
    assert throttle.due(1)
    assert not throttle.due(2)  # step 1's preview is still being encoded
    throttle.encoded(cpu_s=0.0)
    assert throttle.due(3)


def test_an_encode_spaces_the_next_preview_by_its_cpu_time_over_the_budget() -> None:
    throttle = PreviewThrottle(interval_ms=0)
    assert throttle.due(1)
    throttle.encoded(cpu_s=PREVIEW_CPU_SHARE * 3600)  # an hour's budget
    assert not throttle.due(2) and not throttle.due(3)


def test_the_interval_holds_whatever_the_budget_allows() -> None:
    throttle = PreviewThrottle(interval_ms=60_000)
    assert throttle.due(1)
    throttle.encoded(cpu_s=0.0)
    assert not throttle.due(2)
    assert throttle.due(1)  # a new run of the job starts again at its first step
