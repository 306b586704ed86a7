"""Runtime.warm_up on the CPU: models with compile on compile their presets' shapes at start (dynamo with the
`eager` backend), their LoRA slots are primed, the compile cache goes under the data dir, and the first job then
compiles nothing."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from models.lora_slots import LoraSlots
from npc_video_client.contract import JobEnvelope
from tests.support.jobs import envelope, png_bytes
from worker.job import SilentHooks
from worker.runtime import Runtime

RunnerFactory = Callable[..., Runtime]
PRESETS = """
[models.tiny-wan.presets.realtime]
width = 32
height = 32
cfg = 1.0
loras = ["glow"]
[models.tiny-wan.presets.fast]
width = 32
height = 32
[models.tiny-wan.presets.balanced]
width = 48
height = 48
[models.tiny-wan.presets.quality]
width = 48
height = 48
"""
COMPILED = """
[models.tiny-wan.speed]
compile = true
compile_cpu = true
compile_backend = "eager"
lora_slots = 2
lora_rank = 8
"""


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import torch._dynamo
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    # what importing diffusers leaves behind: torch's default folder (warm-up moves it; put back afterwards)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compilations() -> int:
    from torch._dynamo.utils import counters

    return int(counters["frames"]["total"])


def npc_image(tmp_path: Path) -> Path:
    path = tmp_path / "npc.png"
    path.write_bytes(png_bytes((96, 64)))
    return path


def test_warm_up_compiles_each_preset_shape_so_the_first_job_does_not(
    make_runner: RunnerFactory, tmp_path: Path
) -> None:
    npc = f'[npcs.npc-7]\nbase_image = "{npc_image(tmp_path)}"\n'
    runner = make_runner(PRESETS + COMPILED + npc)
    warmed = runner.models.warm_up()
    # realtime (one pass) and fast (cfg) share a size but not a batch; quality has balanced's shape: not run twice
    assert [line.split(" ")[:2] for line in warmed] == [
        ["tiny-wan", "realtime"],
        ["tiny-wan", "fast"],
        ["tiny-wan", "balanced"],
    ]
    assert warmed[0].split(" ")[2].endswith("x49")  # 3 s at 16 fps (the default duration), 4k+1 frames
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str((tmp_path / "data" / "compile-cache").resolve())
    assert (tmp_path / "data" / "compile-cache").is_dir()
    adapters = runner.pool.get("tiny-wan").adapters
    assert isinstance(adapters, LoraSlots) and adapters.primed and adapters.loaded == ["glow"]
    compiled = compilations()
    assert compiled >= 1
    for preset, loras in (("quality", ["sparkle"]), ("realtime", []), ("fast", ["glow:0.5", "comfy"])):
        # the job's image is the NPC's (no npc_base_image), as warm-up's was
        document = envelope(f"first-{preset}", quality_preset=preset, width=None, height=None, duration=None)
        document["params"].pop("npc_base_image")
        document["params"]["loras"] = loras
        prepared = runner.preparer.prepare(JobEnvelope.model_validate(document), SilentHooks())
        runner.models.generate(prepared, SilentHooks())
        assert compilations() == compiled, f"the first {preset} job compiled again"


def test_an_operators_cache_folder_is_kept(
    make_runner: RunnerFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    runner = make_runner(PRESETS + COMPILED)
    assert len(runner.models.warm_up()) == 3
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "data" / "compile-cache").exists()


def test_a_preset_that_cannot_run_is_left_out_with_a_warning(
    make_runner: RunnerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="worker.warmup")
    too_many = PRESETS.replace('loras = ["glow"]', 'loras = ["glow", "sparkle"]')
    runner = make_runner(too_many + COMPILED.replace("lora_slots = 2", "lora_slots = 1"))
    warmed = runner.models.warm_up()
    assert [line.split(" ")[1] for line in warmed] == ["fast", "balanced"]
    assert 'warm-up: tiny-wan realtime not warmed: invalid_params: model "tiny-wan" runs LoRAs in 1' in caplog.text


def test_warm_up_without_compile_does_nothing(make_runner: RunnerFactory) -> None:
    runner = make_runner(PRESETS + "[models.tiny-wan.speed]\ncompile = true\n")  # CUDA only: skipped on the CPU
    assert runner.models.warm_up() == []
    assert "compile-cache" not in os.environ["TORCHINDUCTOR_CACHE_DIR"]
    assert not runner.pool.is_loaded("tiny-wan")
