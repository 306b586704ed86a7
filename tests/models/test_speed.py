"""Speed settings of `[models.X.speed]`: validated at catalog load, applied after loading, skipped with a log on CPU."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.catalog import CatalogError, load_catalog
from models.speed import TAYLORSEER_HOOK, SpeedSettings, fp8_matmul_unavailable
from npc_video_client.contract import JobStatus
from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.jobs import envelope
from tests.support.video import decode_mp4, path_of
from worker.runtime import Runtime

RunnerFactory = Callable[..., Runtime]


def attention_backends(model: Any) -> set[str | None]:
    processors = [module.processor for module in model.modules() if hasattr(module, "processor")]
    assert processors
    return {processor._attention_backend for processor in processors}


def speed_table(body: str) -> str:
    return f"[models.tiny-wan.speed]\n{body}\n"


def generate(runner: Runtime) -> None:
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


def test_vae_slicing_is_enabled(make_runner: RunnerFactory) -> None:
    runner = make_runner(speed_table("vae_slicing = true"))
    generate(runner)
    assert runner.pool.get("tiny-wan").pipe.vae.use_slicing


def test_fp8_matmul_is_skipped_off_hopper_and_ada_with_a_log_line(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(speed_table("fp8_matmul = true"))
    generate(runner)
    assert "model tiny-wan: speed setting fp8_matmul ignored on cpu: float8 matrix multiplication" in caplog.text
    transformer = runner.pool.get("tiny-wan").pipe.transformer
    assert all(type(parameter) is torch.nn.Parameter for parameter in transformer.parameters())  # none quantized


@pytest.mark.parametrize(
    ("device", "capability", "reason"),
    [
        ("cpu", None, "needs a CUDA device"),
        ("cuda", (8, 0), "need compute capability 8.9 or later (Ada, Hopper), this one has 8.0"),
        ("cuda:1", (8, 9), None),
        ("cuda", (9, 0), None),
    ],
)
def test_fp8_matmul_needs_compute_capability_8_9(
    device: str, capability: tuple[int, int] | None, reason: str | None
) -> None:
    found = fp8_matmul_unavailable(device, capability)
    assert found is None if reason is None else reason in (found or "")


def test_fp8_storage_and_fp8_matmul_are_exclusive(
    tmp_path: Path, tiny_wan_dir: Path, tiny_loras: dict[str, Path]
) -> None:
    path = write_catalog(
        tmp_path,
        tiny_catalog_text(tiny_wan_dir, tiny_loras, extra=speed_table("fp8_layerwise = true\nfp8_matmul = true")),
    )
    with pytest.raises(CatalogError, match="fp8_layerwise and fp8_matmul are both on; choose one"):
        load_catalog(path)


def test_compile_on_cpu_is_an_opt_in(make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture) -> None:
    import torch._dynamo

    caplog.set_level(logging.INFO, logger="models")
    torch._dynamo.reset()
    try:
        runner = make_runner(speed_table('compile = true\ncompile_cpu = true\ncompile_backend = "eager"'))
        generate(runner)
        blocks = runner.pool.get("tiny-wan").pipe.transformer.blocks
        assert all(block._compiled_call_impl is not None for block in blocks)
        assert "model tiny-wan: compiling WanTransformer3DModel blocks (eager) on first use" in caplog.text
    finally:
        torch._dynamo.reset()


def test_taylorseer_warns_when_its_patterns_match_no_layer(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """diffusers' default TaylorSeer patterns (`^blocks.*attn`, matched whole) miss Wan's attn1/attn2."""
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(speed_table('cache = { type = "taylorseer", cache_interval = 2 }'))
    generate(runner)
    assert "the taylorseer cache matches no layer of WanTransformer3DModel, so it changes nothing" in caplog.text


def test_taylorseer_with_identifiers_hooks_wan_layers(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models")
    cache = 'cache = { type = "taylorseer", cache_identifiers = ["^blocks\\\\.\\\\d+\\\\.attn[12]$"] }'
    runner = make_runner(speed_table(cache))
    generate(runner)
    assert "matches no layer" not in caplog.text
    assert "model tiny-wan: taylorseer cache on WanTransformer3DModel" in caplog.text
    transformer = runner.pool.get("tiny-wan").pipe.transformer
    hooked = [name for name, module in transformer.named_modules() if _hooked_alone(module)]
    assert hooked == ["blocks.0.attn1", "blocks.0.attn2", "blocks.1.attn1", "blocks.1.attn2"]


def _hooked_alone(module: Any) -> bool:
    registry = getattr(module, "_diffusers_hook", None)
    return registry is not None and registry.get_hook(TAYLORSEER_HOOK) is not None


def test_taylorseer_lite_mode_predicts_and_changes_the_output(make_runner: RunnerFactory, tmp_path: Path) -> None:
    job = {"width": 32, "height": 32, "duration": 0.5, "steps": 6, "seed": 1}
    exact = make_runner(storage_url=f"file://{tmp_path / 'exact'}").run(envelope("exact", **job))
    cache = 'cache = { type = "taylorseer", cache_interval = 2, disable_cache_before_step = 2, use_lite_mode = true }'
    lite = make_runner(speed_table(cache)).run(envelope("lite", **job))
    assert exact.status == lite.status == JobStatus.COMPLETED
    assert not np.array_equal(decode_mp4(path_of(lite.url))[1], decode_mp4(path_of(exact.url))[1])


def test_fp8_matmul_targets_the_blocks_bfloat16_linear_layers() -> None:
    """What torchao would quantize: the repeated blocks' linear layers (sides multiples of 16) in bfloat16; not the
    embedders, the output projection, or layers Wan pins to float32."""
    from models.speed import fp8_matmul_target
    from models.synthetic import build_synthetic_pipeline

    pipe = build_synthetic_pipeline("wan22-ti2v-5b", device="cpu", dtype=torch.bfloat16, scale="narrow")
    targets = [name for name, module in pipe.transformer.named_modules() if fp8_matmul_target(module, name)]
    assert "blocks.0.attn1.to_q" in targets and "blocks.1.ffn.net.2" in targets
    assert all(name.startswith("blocks.") for name in targets)
    linears = [name for name, module in pipe.transformer.named_modules() if isinstance(module, torch.nn.Linear)]
    assert {"proj_out", "condition_embedder.time_embedder.linear_1"} <= set(linears) - set(targets)
    float32 = pipe.transformer.to(torch.float32)
    assert not any(fp8_matmul_target(module, name) for name, module in float32.named_modules())


def test_fp8_matmul_leaves_inductors_process_wide_settings_alone() -> None:
    """torchao's float8 config would turn on coordinate-descent tuning (longer compiles) and float32 matmul
    precision "high" for the whole process; the worker's asks it not to. Skipped where torchao is absent (the CI
    environment: it is the `gpu` extra); the GPU check's tests stage runs it."""
    pytest.importorskip("torchao", reason="the gpu extra (torchao) is not installed")
    from models.speed import fp8_matmul_config

    config = fp8_matmul_config()
    assert config.set_inductor_config is False
    assert [type(granularity).__name__ for granularity in config.granularity] == ["PerRow", "PerRow"]
