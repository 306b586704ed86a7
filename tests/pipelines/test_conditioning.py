"""Conditioning caches on the real tiny pipelines of every family: a repeated job skips the text encoder, the image
encoder and the VAE encode of its start frame, and its frames are byte-identical to an uncached run; other inputs
miss; the cache stays within its byte budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from npc_video_client.contract import JobEnvelope
from pipelines.conditioning import ConditionCache, size_of
from tests.support.jobs import envelope
from tests.support.models import FAMILIES
from worker.job import SilentHooks
from worker.runtime import Runtime

ENCODERS = ("text_encoder", "image_encoder")


@pytest.fixture(scope="module")
def model_dirs(model_dir: Callable[..., Path]) -> dict[str, Path]:
    return {family: model_dir(family) for family in FAMILIES}


def _count_encoder_calls(pipe: Any) -> Counter[str]:
    """Forward calls of each encoder and VAE encodes, counted from now on."""
    calls: Counter[str] = Counter()
    for name in ENCODERS:
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            module.register_forward_hook(lambda *_args, name=name: calls.update([name]))
    # The encoder may run once per chunk of frames; `quant_conv` (where a VAE has one) runs once per encode call.
    counted = getattr(pipe.vae, "quant_conv", None) or pipe.vae.encoder
    counted.register_forward_hook(lambda *_args: calls.update(["vae_encode"]))
    return calls


def _generate(runner: Runtime, **params: Any) -> tuple[np.ndarray, float]:
    prepared = runner.preparer.prepare(JobEnvelope.model_validate(envelope(**params)), SilentHooks())
    frames = runner.models.generate(prepared, SilentHooks())
    return frames, prepared.timings.condition_ms


@pytest.mark.parametrize("family", FAMILIES)
def test_a_repeated_job_skips_every_encoder_and_gives_the_same_bytes(
    family: str, model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]
) -> None:
    runner = family_runner(family, model_dirs[family])
    runner.models.conditions = None
    uncached, _ = _generate(runner, steps=2)
    runner.models.conditions = ConditionCache(64 * 1024**2)
    calls = _count_encoder_calls(runner.pool.get("tiny").pipe)

    first, first_ms = _generate(runner, steps=2)
    after_first = Counter(calls)
    again, again_ms = _generate(runner, steps=2)

    assert np.array_equal(first, uncached) and np.array_equal(again, uncached)
    assert after_first["vae_encode"] >= 1
    assert calls == after_first  # the repeat ran no encoder at all
    assert runner.models.conditions.hits >= 2
    assert first_ms > 0 and again_ms < first_ms


def test_other_prompts_and_images_miss(model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]) -> None:
    from tests.support.jobs import data_uri, png_bytes

    runner = family_runner("wan-i2v", model_dirs["wan-i2v"])
    runner.models.conditions = ConditionCache(64 * 1024**2)
    calls = _count_encoder_calls(runner.pool.get("tiny").pipe)
    _generate(runner, steps=1)
    assert calls["text_encoder"] == 2  # the prompt and the negative prompt (cfg > 1)
    _generate(
        runner, steps=1, emotion="angry"
    )  # another prompt: it misses; the shared negative prompt and the image hit
    assert calls["text_encoder"] == 3 and calls["image_encoder"] == 1 and calls["vae_encode"] == 1
    _generate(runner, steps=1, npc_base_image=data_uri(png_bytes(color=(10, 220, 30))))  # another image
    assert calls["image_encoder"] == 2 and calls["vae_encode"] == 2
    _generate(runner, steps=1, width=96, height=64)  # the same image at another size: another start frame
    assert calls["vae_encode"] == 3


def test_the_cache_keeps_within_its_byte_budget() -> None:
    cache = ConditionCache(max_bytes=3 * 4096)
    for index in range(10):
        cache.get_or_compute(("k", index), lambda: (torch.zeros(1024), torch.ones(1024)))  # 8 KiB each
    assert cache.bytes <= cache.max_bytes and len(cache) == 1
    shared = torch.zeros(256)
    assert size_of((shared, shared, {"again": shared})) == 1024  # a tensor held twice counts once
    assert cache.get_or_compute(("k", 9), lambda: pytest.fail("a hit must not compute")) is not None
    huge = ConditionCache(max_bytes=10)
    huge.get_or_compute(("big",), lambda: torch.zeros(100))
    assert len(huge) == 0  # larger than the whole budget: returned, not kept
