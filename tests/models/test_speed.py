"""Speed settings of `[models.X.speed]`: validated at catalog load, applied after loading, skipped with a log on CPU."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from models.catalog import CatalogError, load_catalog
from models.speed import SpeedSettings
from npc_video_client.contract import JobStatus
from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.jobs import envelope
from worker.jobs import JobRunner

RunnerFactory = Callable[..., JobRunner]


def attention_backends(model: Any) -> set[str | None]:
    processors = [module.processor for module in model.modules() if hasattr(module, "processor")]
    assert processors
    return {processor._attention_backend for processor in processors}


def speed_table(body: str) -> str:
    return f"[models.tiny-wan.speed]\n{body}\n"


def generate(runner: JobRunner) -> None:
    result = runner.run(envelope(width=32, height=32, duration=0.5, steps=2))
    assert result.status == JobStatus.COMPLETED, result.error_message


def test_cuda_only_settings_are_skipped_on_cpu_with_a_log_line(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(speed_table('attention_backend = "flash"\ncompile = true\nfp8_layerwise = true'))
    generate(runner)
    for setting in ("attention_backend='flash'", "compile", "fp8_layerwise"):
        assert f"model tiny-wan: speed setting {setting} ignored on cpu" in caplog.text
    transformer = runner.pool.get("tiny-wan").pipe.transformer
    assert {parameter.dtype for parameter in transformer.parameters()} == {torch.float32}  # no fp8 storage
    assert attention_backends(transformer) == {None}


def test_vae_tiling_is_enabled(make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(speed_table("vae_tiling = true"))
    generate(runner)
    assert runner.pool.get("tiny-wan").pipe.vae.use_tiling
    assert "model tiny-wan: VAE tiling" in caplog.text


def test_a_cpu_attention_backend_is_set_on_the_model_only(make_runner: RunnerFactory) -> None:
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    default_before = _AttentionBackendRegistry._active_backend
    runner = make_runner(speed_table('attention_backend = "_native_math"'))
    generate(runner)
    assert attention_backends(runner.pool.get("tiny-wan").pipe.transformer) == {"_native_math"}
    assert _AttentionBackendRegistry._active_backend == default_before  # other models keep the default


@pytest.mark.parametrize(
    ("cache", "config_class"),
    [
        ('{ type = "first_block", threshold = 0.2 }', "FirstBlockCacheConfig"),
        ('{ type = "taylorseer", cache_interval = 2, disable_cache_before_step = 1 }', "TaylorSeerCacheConfig"),
        (
            '{ type = "magcache", mag_ratios = [1.0, 0.98], num_inference_steps = 2, retention_ratio = 0.0 }',
            "MagCacheConfig",
        ),
    ],
)
def test_each_cache_is_enabled_and_generation_completes(
    make_runner: RunnerFactory, cache: str, config_class: str
) -> None:
    runner = make_runner(speed_table(f"cache = {cache}"))
    generate(runner)
    transformer = runner.pool.get("tiny-wan").pipe.transformer
    assert transformer.is_cache_enabled
    assert type(transformer._cache_config).__name__ == config_class


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ('cache = { type = "teacache" }', "models.tiny-wan.speed.cache", "'first_block', 'taylorseer', 'magcache'"),
        ('cache = { type = "magcache" }', "models.tiny-wan.speed.cache.magcache", "calibrate = true"),
        ('cache = { type = "first_block", threshold = 0 }', "speed.cache.first_block.threshold", "greater than 0"),
        ('attention_backend = "flashy"', "models.tiny-wan.speed.attention_backend", "_native_cudnn"),
        ("compile_mode = 1", "models.tiny-wan.speed.compile_mode", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_speed_table_is_refused_at_catalog_load(
    tmp_path: Path, tiny_wan_dir: Path, tiny_loras: dict[str, Path], body: str, key: str, reason: str
) -> None:
    path = write_catalog(tmp_path, tiny_catalog_text(tiny_wan_dir, tiny_loras, extra=speed_table(body)))
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"catalog {path}: [")
    assert key in message and reason in message


def test_speed_settings_default_to_off(catalog_path: Path) -> None:
    speed = load_catalog(catalog_path).models["tiny-wan"].speed
    assert speed == SpeedSettings()
    assert not (speed.attention_backend or speed.compile or speed.cache or speed.vae_tiling or speed.fp8_layerwise)
