"""CUDA-only checks (marked `gpu`, skipped without a device): placement, residency moves, speed settings, synthetic
models built on the device for offload, LoRA hotswap scalings that follow the model.

Written without a GPU at hand (none was lent to this task): run them on a GPU node with `scripts/test.sh -m gpu`
(scripts/gpu-check.sh runs them last, each under a 30 s timeout).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from npc_video_client.contract import JobEnvelope, JobStatus
from tests.support.jobs import envelope
from worker.job import SilentHooks

pytestmark = pytest.mark.gpu
JOB = {"width": 32, "height": 32, "duration": 0.5, "steps": 2}
SLOTS = "[models.tiny-wan.speed]\nlora_slots = 2\nlora_rank = 8\n"


def _device_of(pipe) -> str:
    return next(pipe.transformer.parameters()).device.type


def test_generation_runs_on_cuda(make_runner):
    runner = make_runner(device="cuda")
    result = runner.run(envelope("cuda-job"))
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert _device_of(runner.pool.get("tiny-wan").pipe) == "cuda"
    assert result.gpu_seconds > 0


def _frames(runner, job_id: str, **params) -> np.ndarray:
    prepared = runner.preparer.prepare(JobEnvelope.model_validate(envelope(job_id, **params)), SilentHooks())
    return runner.models.generate(prepared, SilentHooks())


def test_seeded_output_is_the_same_on_cuda_twice_within_one_level(make_runner, tmp_path):
    """CUDA promises no bitwise identity without deterministic algorithms (which the worker does not turn on):
    the same seed gives the same frames within one level of 255, compared before encoding (the codec could turn a
    one-level difference into more)."""
    first = _frames(make_runner(device="cuda", storage_url=f"file://{tmp_path / 'a'}"), "a", seed=3, **JOB)
    second = _frames(make_runner(device="cuda", storage_url=f"file://{tmp_path / 'b'}"), "a", seed=3, **JOB)
    assert first.shape == second.shape
    assert int(np.abs(first.astype(np.int16) - second.astype(np.int16)).max()) <= 1


def test_offloaded_model_really_leaves_the_device(make_runner, model_dir):
    from models.residency import weight_bytes

    other = model_dir("wan-i2v", seed=1)
    extra = f'[models.other]\nfamily = "wan-i2v"\npath = "{other}"\ndtype = "float32"\n'
    extra += '[styles.anime]\nmodel = "other"\n'
    probe = make_runner(device="cuda")
    budget = int(weight_bytes(probe.pool.get("tiny-wan").pipe) * 1.5)
    runner = make_runner(catalog_extra=extra, device="cuda", device_memory_budget=budget)
    runner.run(envelope("first"))
    runner.run(envelope("second", art_style="anime"))
    assert _device_of(runner.pool.get("other").pipe) == "cuda"
    assert runner.pool.stats("tiny-wan").offloads == 1
    assert _device_of(runner.pool._loaded["tiny-wan"].pipe) == "cpu"  # without get(): that would move it back


def test_speed_settings_apply_on_cuda(make_runner):
    extra = '[models.tiny-wan.speed]\nvae_tiling = true\ncache = { type = "first_block", threshold = 0.2 }\n'
    runner = make_runner(catalog_extra=extra, device="cuda")
    assert runner.run(envelope("fast")).status == JobStatus.COMPLETED
    assert runner.pool.get("tiny-wan").pipe.vae.use_tiling


def test_a_synthetic_model_with_offload_is_built_on_the_device_then_kept_in_cpu_memory(
    make_runner, caplog: pytest.LogCaptureFixture
):
    extra = (
        '[models.narrow]\nfamily = "wan22-ti2v"\nsynthetic = "wan22-ti2v-5b"\nsynthetic_scale = "narrow"\n'
        'dtype = "bfloat16"\noffload = "model"\n[styles.narrow]\nmodel = "narrow"\n'
    )
    runner = make_runner(catalog_extra=extra, device="cuda")
    with caplog.at_level(logging.INFO, logger="models.pool"):
        pipe = runner.pool.get("narrow").pipe
    assert "synthetic weights built on cuda, moved to CPU memory for offload" in caplog.text
    assert _device_of(pipe) == "cpu"  # the offload hooks bring each component in for its call
    result = runner.run(envelope("offloaded", art_style="narrow", width=64, height=64, duration=0.5, steps=2))
    assert result.status == JobStatus.COMPLETED, result.error_message


def _slot_scalings(pipe) -> list[torch.Tensor]:
    from models.lora_slots import _lora_layers

    return [value for layer in _lora_layers(pipe) for value in layer.scaling.values()]


def test_hotswap_scalings_move_with_a_model_offloaded_and_brought_back(make_runner, tiny_wan_dir, tmp_path: Path):
    from models.residency import weight_bytes

    extra = f'{SLOTS}[models.other]\nfamily = "wan-i2v"\npath = "{tiny_wan_dir}"\ndtype = "float32"\n'
    extra += '[styles.anime]\nmodel = "other"\n'
    probe = make_runner(device="cuda")
    budget = int(weight_bytes(probe.pool.get("tiny-wan").pipe) * 1.5)
    runner = make_runner(catalog_extra=extra, device="cuda", device_memory_budget=budget)
    assert runner.run(envelope("with-lora", loras=["glow:0.7"], **JOB)).status == JobStatus.COMPLETED
    pipe = runner.pool._loaded["tiny-wan"].pipe
    scalings = _slot_scalings(pipe)
    assert scalings and {value.device.type for value in scalings} == {"cuda"}
    runner.run(envelope("other-model", art_style="anime", **JOB))  # pushes tiny-wan out to CPU memory
    assert _device_of(pipe) == "cpu"
    assert {value.device.type for value in _slot_scalings(pipe)} == {"cpu"}
    back = runner.run(envelope("back", loras=["sparkle"], **JOB))
    assert back.status == JobStatus.COMPLETED, back.error_message
    after = _slot_scalings(pipe)
    assert {value.device.type for value in after} == {"cuda"}
    assert all(new is old for new, old in zip(after, scalings, strict=True))  # moved in place: the same tensors


def test_hotswap_scalings_live_on_the_gpu_when_offload_hooks_keep_the_weights_in_cpu_memory(make_runner, tiny_wan_dir):
    extra = (
        f'[models.hooked]\nfamily = "wan-i2v"\npath = "{tiny_wan_dir}"\ndtype = "float32"\noffload = "model"\n'
        '[models.hooked.speed]\nlora_slots = 2\nlora_rank = 8\n[styles.hooked]\nmodel = "hooked"\n'
    )
    runner = make_runner(catalog_extra=extra, device="cuda")
    result = runner.run(envelope("offloaded-lora", art_style="hooked", loras=["glow:0.7"], **JOB))
    assert result.status == JobStatus.COMPLETED, result.error_message
    pipe = runner.pool.get("hooked").pipe
    assert _device_of(pipe) == "cpu"
    assert {value.device.type for value in _slot_scalings(pipe)} == {"cuda"}
