"""Speed settings on a CUDA device (marked `gpu`, skipped without one): torch.compile with Inductor and LoRA hotswap
slots (a LoRA change compiles nothing), torchao float8 GEMMs with a LoRA on top (compute capability 8.9 and later,
the `gpu` extra), VAE slicing. Written without a GPU at hand: `scripts/gpu-check.sh` runs them on one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings

pytestmark = pytest.mark.gpu
RunnerFactory = Callable[..., Runtime]
JOB = {"width": 32, "height": 32, "duration": 0.5, "steps": 2}


@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    import torch._dynamo

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled_frames() -> int:
    from torch._dynamo.utils import counters

    return int(counters["frames"]["total"])


@pytest.mark.usefixtures("fresh_dynamo")
def test_a_lora_change_recompiles_nothing_with_inductor(make_runner: RunnerFactory) -> None:
    speed = "[models.tiny-wan.speed]\ncompile = true\nlora_slots = 2\nlora_rank = 8\nvae_slicing = true\n"
    runner = make_runner(speed, device="cuda")
    assert runner.run(envelope("first", loras=["glow:0.7"], **JOB)).status == JobStatus.COMPLETED
    compiled = compiled_frames()
    assert compiled >= 1
    for index, loras in enumerate((["sparkle"], ["comfy:0.5", "glow"], [])):
        result = runner.run(envelope(f"next-{index}", loras=loras, **JOB))
        assert result.status == JobStatus.COMPLETED, result.error_message
        assert compiled_frames() == compiled, f"LoRAs {loras} recompiled"
    assert runner.pool.get("tiny-wan").pipe.vae.use_slicing


def test_fp8_matmul_quantizes_the_denoiser_and_takes_a_lora(tmp_path: Path) -> None:
    pytest.importorskip("torchao", reason="fp8_matmul needs the gpu extra (torchao)")
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("float8 GEMMs need compute capability 8.9 or later")
    from models.synthetic import build_synthetic_pipeline
    from models.synthetic.lora import write_synthetic_lora

    lora = tmp_path / "narrow.safetensors"
    reference = build_synthetic_pipeline("wan22-ti2v-5b", device="cpu", dtype=torch.bfloat16, scale="narrow")
    write_synthetic_lora(reference.transformer, lora, rank=8, seed=1)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[defaults]\nmodel = "narrow"\n'
        '[models.narrow]\nfamily = "wan22-ti2v"\nsynthetic = "wan22-ti2v-5b"\nsynthetic_scale = "narrow"\n'
        "[models.narrow.speed]\nfp8_matmul = true\n"
        f'[loras.narrow-lora]\npath = "{lora}"\n',
        encoding="utf-8",
    )
    from torch._inductor import config as inductor

    inductor_before = (inductor.coordinate_descent_tuning, torch.get_float32_matmul_precision())
    runner = build_runtime(
        Settings(catalog=catalog, device="cuda", storage_url=f"file://{tmp_path / 'out'}", data_dir=tmp_path / "data")
    )
    job = {**JOB, "width": 64, "height": 64}
    for index, loras in enumerate(([], ["narrow-lora"])):
        result = runner.run(envelope(f"fp8-{index}", loras=loras, **job))
        assert result.status == JobStatus.COMPLETED, result.error_message
    projection = runner.pool.get("narrow").pipe.transformer.blocks[0].attn1.to_q
    weight = projection.base_layer.weight if hasattr(projection, "base_layer") else projection.weight
    assert type(weight).__module__.startswith("torchao"), type(weight)
    # set_inductor_config=False: quantizing changed no process-wide compile setting
    assert (inductor.coordinate_descent_tuning, torch.get_float32_matmul_precision()) == inductor_before
