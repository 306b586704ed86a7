"""Wan 2.2 I2V A14B end to end: two experts, 16-pixel grid, 4k+1 frames, LoRAs loaded into both experts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft.utils import get_peft_model_state_dict

from tests.support.jobs import envelope
from tests.support.models import write_lora
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def runner(model_dir, tmp_path_factory: pytest.TempPathFactory, family_runner) -> Runtime:
    shine = tmp_path_factory.mktemp("wan22-lora") / "shine.safetensors"
    write_lora(shine, seed=5, family="wan22-i2v", lora_format="kohya")  # kohya keys, as Wan 2.2 LoRAs ship
    return family_runner("wan22-i2v", model_dir("wan22-i2v"), {"shine": shine})


def test_snaps_to_the_grid_and_frame_rule_and_runs_both_experts(runner: Runtime, video_of) -> None:
    result = runner.run(envelope("plain", width=70, height=52, fps=8, duration=1.25))
    assert (result.width, result.height, result.num_frames, result.fps) == (64, 48, 10, 8)
    assert (result.generated_frames, result.generated_fps) == (21, 16)  # 20 at 16 fps -> 4k+1, then 10.5 at 8 fps
    video_of(result)
    pipe = runner.pool.get("tiny").pipe
    assert pipe.transformer is not None and pipe.transformer_2 is not None
    assert pipe.config.boundary_ratio == pytest.approx(0.9)


def test_a_lora_goes_into_both_experts_and_changes_the_video(runner: Runtime, video_of) -> None:
    plain = video_of(runner.run(envelope("no-lora")))
    result = runner.run(envelope("with-lora", loras=["shine:1.0"]))
    styled = video_of(result)
    assert [(lora.name, lora.weight) for lora in result.loras] == [("shine", 1.0)]
    assert result.prompt is not None and result.prompt.endswith("shine look")
    assert not np.array_equal(plain, styled)

    pipe = runner.pool.get("tiny").pipe
    assert pipe.get_list_adapters() == {"transformer": ["shine"], "transformer_2": ["shine"]}
    high = get_peft_model_state_dict(pipe.transformer, adapter_name="shine")
    low = get_peft_model_state_dict(pipe.transformer_2, adapter_name="shine")
    assert high.keys() == low.keys() and len(high) > 0
    assert all(torch.equal(high[key], low[key]) for key in high)
