"""CUDA-only checks (marked `gpu`, skipped without a device): placement, residency moves, speed settings.

Written without a GPU at hand (none was lent to this task): run them on a GPU node with `scripts/test.sh -m gpu`.
"""

from __future__ import annotations

import pytest

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.video import path_of

pytestmark = pytest.mark.gpu


def _device_of(pipe) -> str:
    return next(pipe.transformer.parameters()).device.type


def test_generation_runs_on_cuda(make_runner):
    runner = make_runner(device="cuda")
    result = runner.run(envelope("cuda-job"))
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert _device_of(runner.pool.get("tiny-wan").pipe) == "cuda"
    assert result.gpu_seconds > 0


def test_seeded_output_is_the_same_on_cuda_twice(make_runner, tmp_path):
    first = make_runner(device="cuda", storage_url=f"file://{tmp_path / 'a'}").run(envelope("a", seed=3))
    second = make_runner(device="cuda", storage_url=f"file://{tmp_path / 'b'}").run(envelope("a", seed=3))
    assert path_of(first.url).read_bytes() == path_of(second.url).read_bytes()


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
