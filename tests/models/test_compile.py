"""torch.compile with LoRA hotswap slots, on the CPU: dynamo traces the tiny Wan transformer's blocks with the `eager`
backend (no code generation, so it is quick), and its counters say whether a LoRA change compiled anything again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from models.lora_slots import LoraSlots
from models.loras import NamedAdapters
from npc_video_client.contract import ErrorCode, JobEnvelope, JobStatus
from npc_video_client.errors import JobError
from tests.support.jobs import envelope
from tests.support.models import write_lora
from worker.job import SilentHooks
from worker.runtime import Runtime

RunnerFactory = Callable[..., Runtime]
JOB = {"width": 32, "height": 32, "duration": 0.5, "steps": 2}
COMPILED_SLOTS = """
[models.tiny-wan.speed]
compile = true
compile_cpu = true
compile_backend = "eager"
lora_slots = 2
lora_rank = 8
"""


@pytest.fixture(autouse=True)
def fresh_dynamo() -> Iterator[None]:
    """Dynamo's caches and counters are per process: each test starts from none and leaves none behind."""
    import torch._dynamo

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compilations() -> tuple[int, int]:
    """(frames dynamo compiled, graphs it produced) so far: both grow on every compilation and recompilation."""
    from torch._dynamo.utils import counters

    return counters["frames"]["total"], counters["stats"]["unique_graphs"]


def frames(runner: Runtime, loras: list[str], job_id: str = "job") -> np.ndarray:
    prepared = runner.preparer.prepare(JobEnvelope.model_validate(envelope(job_id, loras=loras, **JOB)), SilentHooks())
    return runner.models.generate(prepared, SilentHooks())


def test_switching_loras_in_hotswap_slots_does_not_recompile(make_runner: RunnerFactory) -> None:
    runner = make_runner(COMPILED_SLOTS)
    frames(runner, ["glow:0.7"])
    first = compilations()
    assert first[1] >= 1  # the blocks did compile (a block's code is shared by every block: one graph)
    for loras in (["sparkle:0.7"], ["comfy:0.5", "glow"], []):
        frames(runner, loras)
        assert compilations() == first, f"LoRAs {loras} recompiled the denoiser"
    adapters = runner.pool.get("tiny-wan").adapters
    assert isinstance(adapters, LoraSlots) and adapters.slot_names == ["slot0", "slot1"]
    assert sorted(adapters.loaded) == ["comfy", "glow"]


def test_slots_give_the_output_of_named_adapters(make_runner: RunnerFactory, tmp_path: Path) -> None:
    """Padding to the slot rank, scalings as tensors and idle slots at weight 0 change nothing: the frames of
    set_adapters, for every LoRA mix and for none."""
    named = make_runner(storage_url=f"file://{tmp_path / 'named'}")  # built before the speed table is appended
    slots = make_runner("[models.tiny-wan.speed]\nlora_slots = 2\nlora_rank = 8\n")
    for loras in (["glow:0.7"], ["comfy:0.5", "sparkle:-0.3"], []):
        expected = frames(named, loras)
        got = frames(slots, loras)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, loras
    assert isinstance(slots.pool.get("tiny-wan").adapters, LoraSlots)
    assert isinstance(named.pool.get("tiny-wan").adapters, NamedAdapters)


def test_the_slots_are_an_lru_cache_of_loras(make_runner: RunnerFactory) -> None:
    runner = make_runner("[models.tiny-wan.speed]\nlora_slots = 2\nlora_rank = 8\n")
    adapters = runner.pool.get("tiny-wan").adapters
    assert isinstance(adapters, LoraSlots)
    frames(runner, ["glow"])  # primes both slots from glow's file: one read
    assert (adapters.loaded, adapters.disk_loads, adapters.evictions) == (["glow"], 1, 0)
    frames(runner, ["sparkle"])  # into the free slot
    frames(runner, ["glow"])  # still in its slot: weights only
    assert (sorted(adapters.loaded), adapters.disk_loads, adapters.evictions) == (["glow", "sparkle"], 2, 0)
    frames(runner, ["comfy"])  # replaces sparkle, the least recently used
    assert (sorted(adapters.loaded), adapters.disk_loads, adapters.evictions) == (["comfy", "glow"], 3, 1)
    assert adapters.weights() == {"slot0": 0.0, "slot1": 1.0}


def test_more_loras_than_slots_is_a_teaching_error(make_runner: RunnerFactory) -> None:
    runner = make_runner("[models.tiny-wan.speed]\nlora_slots = 1\n")
    result = runner.run(envelope("too-many", loras=["glow", "sparkle"], **JOB))
    assert result.status == JobStatus.FAILED
    assert result.error_code == ErrorCode.INVALID_PARAMS
    assert "1 hotswap slot(s)" in (result.error_message or "")
    assert "at most 1 LoRAs per job, or raise lora_slots" in (result.error_message or "")


def test_a_lora_above_the_slot_rank_is_refused_before_loading(make_runner: RunnerFactory, tmp_path: Path) -> None:
    wide = tmp_path / "wide.safetensors"
    write_lora(wide, seed=5, rank=16)
    extra = f'[loras.wide]\npath = "{wide}"\n[models.tiny-wan.speed]\nlora_slots = 2\nlora_rank = 8\n'
    runner = make_runner(extra)
    frames(runner, ["glow"])
    with pytest.raises(JobError) as caught:
        frames(runner, ["wide"])
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    assert "has rank 16" in caught.value.message and "lora_rank to at least 16" in caught.value.message
    assert runner.pool.get("tiny-wan").adapters.loaded == ["glow"]  # nothing was overwritten
    assert frames(runner, ["glow"]).shape[0] > 0


def test_a_lora_for_other_layers_fails_its_job_and_the_slot_still_works(
    make_runner: RunnerFactory, tmp_path: Path, tiny_wan_dir: Path
) -> None:
    """A LoRA that targets a layer the priming one did not cannot be hotswapped: its job fails with
    invalid_params, the slot is rebuilt, and the next jobs run as before."""
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    config = json.loads((tiny_wan_dir / "transformer" / "config.json").read_text(encoding="utf-8"))
    save_file(
        {  # the feed-forward output projection (ffn_dim -> inner dim): no LoRA of the catalog targets it
            "transformer.blocks.0.ffn.net.2.lora_A.weight": torch.randn(4, config["ffn_dim"]),
            "transformer.blocks.0.ffn.net.2.lora_B.weight": torch.randn(
                config["num_attention_heads"] * config["attention_head_dim"], 4
            ),
        },
        str(other),
    )
    runner = make_runner(f'[loras.other]\npath = "{other}"\n' + COMPILED_SLOTS)
    expected = frames(runner, ["glow:0.7"])
    with pytest.raises(JobError) as caught:
        frames(runner, ["other"])
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    assert "hotswap slots" in caught.value.message and "subset" in caught.value.message
    assert np.array_equal(frames(runner, ["glow:0.7"]), expected)


def test_slot_scalings_move_in_place_where_the_model_goes(make_runner: RunnerFactory) -> None:
    """pipe.to() and offload hooks move parameters and buffers, not the slots' scaling tensors: move_scalings does
    (between the CPU and a GPU in place, keeping the tensor objects: tests/gpu/test_cuda.py); here the meta device
    stands in for a second one."""
    from models.lora_slots import _lora_layers, move_scalings

    runner = make_runner("[models.tiny-wan.speed]\nlora_slots = 2\nlora_rank = 8\n")
    frames(runner, ["glow:0.7"])
    pipe = runner.pool.get("tiny-wan").pipe
    scalings = [value for layer in _lora_layers(pipe) for value in layer.scaling.values()]
    assert scalings and all(isinstance(value, torch.Tensor) and value.device.type == "cpu" for value in scalings)
    assert move_scalings(pipe, "cpu") == 0  # already where the model computes (the slots put them there)
    assert move_scalings(pipe, "meta") == len(scalings)
    after = [value for layer in _lora_layers(pipe) for value in layer.scaling.values()]
    assert len(after) == len(scalings) and all(value.device.type == "meta" for value in after)
    assert move_scalings(pipe, "meta") == 0
