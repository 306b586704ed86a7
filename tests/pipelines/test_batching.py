"""Batching at the denoiser on the real tiny pipelines of every family (CPU, float32): each job of a batch gets the
frames it gets alone, within a small tolerance (GEMMs over a larger batch sum in another order), with its own
image, prompt and seed; the denoiser really ran merged; a member that stops leaves the others running.

The tolerance is a PSNR, not a largest pixel difference: random weights can amplify a float rounding difference at
a few pixels into tens of levels (the tiny Wan 2.2 I2V did so on one CPU and not on another: 22 levels at 0.8% of
the values, still above 40 dB), while a job with another's inputs is below 20 dB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from npc_video_client.contract import JobEnvelope
from npc_video_client.errors import JobCancelled
from pipelines.batching import ForwardBatcher, member_pipeline, run_batch
from pipelines.runner import run_pipeline
from tests.support.jobs import data_uri, envelope, png_bytes
from tests.support.models import FAMILIES
from worker.job import PreparedJob, SilentHooks
from worker.runtime import Runtime

# Frames are uint8: a batched job may differ from the same job alone at a few pixels, never across the picture.
MIN_PSNR_DB = 40.0
MAX_DIFFERENT_FRACTION = 0.01


@pytest.fixture(scope="module")
def model_dirs(model_dir: Callable[..., Path]) -> dict[str, Path]:
    return {family: model_dir(family) for family in FAMILIES}


def _prepared(runner: Runtime, job_id: str, **params: Any) -> PreparedJob:
    return runner.preparer.prepare(JobEnvelope.model_validate(envelope(job_id, **params)), SilentHooks())


def _jobs(runner: Runtime) -> list[PreparedJob]:
    """Three compatible jobs: other images, prompts and seeds; the same size, frames, steps and cfg."""
    images = [png_bytes(color=color) for color in ((200, 120, 40), (30, 200, 90), (90, 40, 220))]
    return [
        _prepared(
            runner, f"b{index}", npc_base_image=data_uri(image), expression=word, seed=index, steps=2, duration=0.5
        )
        for index, (image, word) in enumerate(zip(images, ("smiling", "frowning", "laughing"), strict=True))
    ]


def _run(pipe: Any, runner: Runtime, prepared: PreparedJob, steps: list[int] | None = None) -> np.ndarray:
    loaded = runner.pool.get(prepared.request.model)
    return run_pipeline(
        pipe,
        loaded.family,
        prepared.request,
        prepared.image,
        lambda step, _total: steps.append(step) if steps is not None else None,
    )


def _psnr_db(first: np.ndarray, second: np.ndarray) -> float:
    mse = float(np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _close(batched: np.ndarray, alone: np.ndarray) -> None:
    assert batched.shape == alone.shape
    assert _psnr_db(batched, alone) >= MIN_PSNR_DB
    assert float((batched != alone).mean()) <= MAX_DIFFERENT_FRACTION


@pytest.mark.parametrize("family", FAMILIES)
def test_a_batched_job_matches_the_same_job_alone(
    family: str, model_dirs: dict[str, Path], family_runner: Callable[..., Runtime]
) -> None:
    runner = family_runner(family, model_dirs[family])
    jobs = _jobs(runner)
    pipe = runner.pool.get("tiny").pipe
    alone = [_run(pipe, runner, job) for job in jobs]
    batcher_stats: list[ForwardBatcher] = []

    def call(job: PreparedJob) -> Callable[[Any], np.ndarray]:
        def on_member(member: Any) -> np.ndarray:
            proxy = next(getattr(member, name) for name in ("transformer", "unet") if getattr(member, name, None))
            batcher_stats.append(proxy._batcher)
            return _run(member, runner, job)

        return on_member

    batched = run_batch(pipe, [call(job) for job in jobs])
    for frames, reference in zip(batched, alone, strict=True):
        assert isinstance(frames, np.ndarray), frames
        _close(frames, reference)
    for index, frames in enumerate(batched):  # the jobs really differ: each kept its own inputs
        others = [reference for other, reference in enumerate(alone) if other != index]
        assert all(_psnr_db(frames, reference) < MIN_PSNR_DB / 2 for reference in others)
    batcher = batcher_stats[0]
    assert batcher.merged_calls >= 2 and batcher.split_calls == 0  # the denoiser ran merged, every step


def test_members_sharing_cached_conditioning_still_get_a_sample_each(model_dirs, family_runner) -> None:
    """The worker's usual batch: one NPC's image for every member, its embeddings and start frame from the
    conditioning cache (the very same tensors for each member)."""
    from pipelines.conditioning import ConditionCache

    runner = family_runner("wan-i2v", model_dirs["wan-i2v"])
    runner.models.conditions = ConditionCache(64 * 1024**2)
    jobs = [_prepared(runner, f"s{index}", seed=index, steps=2, duration=0.5) for index in range(3)]
    runner.models.generate(jobs[0], SilentHooks())  # fills the cache
    alone = [runner.models.generate(job, SilentHooks()) for job in jobs]
    batched = runner.models.generate_batch([(job, SilentHooks()) for job in jobs])
    for frames, reference in zip(batched, alone, strict=True):
        assert isinstance(frames, np.ndarray), frames
        _close(frames, reference)
    assert all(job.batch_size == 3 for job in jobs)


def test_a_member_that_stops_leaves_the_others_running(model_dirs, family_runner) -> None:
    runner = family_runner("wan-i2v", model_dirs["wan-i2v"])
    jobs = [_prepared(runner, f"c{index}", seed=index, steps=4, duration=0.5) for index in range(3)]
    pipe = runner.pool.get("tiny").pipe
    reference = _run(pipe, runner, jobs[0])
    steps: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def call(index: int) -> Callable[[Any], np.ndarray]:
        def on_member(member: Any) -> np.ndarray:
            def on_step(step: int, _total: int) -> None:
                steps[index].append(step)
                if index == 1 and step == 2:
                    raise JobCancelled(jobs[index].job_id)

            loaded = runner.pool.get("tiny")
            return run_pipeline(member, loaded.family, jobs[index].request, jobs[index].image, on_step)

        return on_member

    outcomes = run_batch(pipe, [call(index) for index in range(3)])
    assert isinstance(outcomes[1], JobCancelled) and steps[1] == [1, 2]
    assert steps[0] == steps[2] == [1, 2, 3, 4]
    _close(outcomes[0], reference)


def test_member_pipelines_share_weights_but_not_call_state(model_dirs, family_runner) -> None:
    runner = family_runner("wan-i2v", model_dirs["wan-i2v"])
    pipe = runner.pool.get("tiny").pipe
    member = member_pipeline(pipe, ForwardBatcher(1))
    assert member.scheduler is not pipe.scheduler
    assert member.text_encoder is pipe.text_encoder
    assert (
        member.vae._module is pipe.vae and member.vae.config is pipe.vae.config
    )  # shared: encodes take turns, decodes merge
    assert member.transformer._module is pipe.transformer  # shared, its calls batched
    assert member.transformer.config is pipe.transformer.config
