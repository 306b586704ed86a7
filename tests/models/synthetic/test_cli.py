"""`npc-worker synthetic list`, `synthetic count NAME` and `synthetic write NAME DIR`, through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from models.synthetic import SYNTHETIC_MODELS, build_synthetic_pipeline, count_parameters
from worker.cli import app

KNOWN = (
    "known: cogvideox-5b-i2v, cogvideox15-5b-i2v, ltx-video-2b, ltx-video-2b-090, svd-xt, wan21-i2v-14b-480p, "
    "wan21-i2v-14b-720p, wan22-i2v-a14b, wan22-ti2v-5b"
)


def public(config: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in config.items() if not key.startswith("_")}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_names_every_model_with_its_family_and_description():
    code, out, _ = invoke("synthetic", "list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(SYNTHETIC_MODELS)
    for line, model in zip(lines, SYNTHETIC_MODELS.values(), strict=True):
        assert line.split()[:2] == [model.name, model.family]
        assert line.endswith(model.description)


def test_count_prints_the_parameter_counts_as_json():
    code, out, _ = invoke("synthetic", "count", "svd-xt")
    assert code == 0
    counts = json.loads(out)
    assert counts == {"image_encoder": 632_076_800, "vae": 97_742_847, "unet": 1_524_623_082, "total": 2_254_442_729}


def test_count_of_the_narrow_scale():
    code, out, _ = invoke("synthetic", "count", "ltx-video-2b", "--scale", "narrow")
    assert code == 0
    assert json.loads(out) == count_parameters("ltx-video-2b", "narrow")
    assert json.loads(out)["total"] < 10_000_000


@pytest.mark.parametrize(
    "args",
    [
        ("synthetic", "count", "wan-3"),
        ("synthetic", "write", "wan-3", "out"),
    ],
)
def test_unknown_names_exit_2_listing_the_known_ones(tmp_path, args):
    code, _, err = invoke(*(str(tmp_path / arg) if arg == "out" else arg for arg in args))
    assert code == 2
    assert "unknown synthetic model 'wan-3'" in err and KNOWN in err
    assert not (tmp_path / "out").exists()


def test_synthetic_without_a_command_shows_its_commands():
    code, out, err = invoke("synthetic")
    assert code == 2
    assert all(command in out + err for command in ("list", "count", "write"))


def test_cuda_device_without_cuda_exits_2(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = invoke("synthetic", "write", "svd-xt", str(tmp_path / "m"), "--device", "cuda")
    assert code == 2 and "CUDA" in err


@pytest.mark.parametrize(
    ("name", "pipeline_class"),
    [("wan22-i2v-a14b", "WanImageToVideoPipeline"), ("wan21-i2v-14b-480p", "WanImageToVideoPipeline")],
)
def test_written_directory_loads_with_from_pretrained_as_the_built_pipeline(tmp_path: Path, name, pipeline_class):
    import diffusers

    directory = tmp_path / name
    code, out, err = invoke("synthetic", "write", name, str(directory), "--scale", "narrow", "--seed", "3")
    assert code == 0, err
    assert out.strip() == str(directory)
    index = json.loads((directory / "model_index.json").read_text(encoding="utf-8"))
    assert index["_class_name"] == pipeline_class

    loaded = getattr(diffusers, pipeline_class).from_pretrained(str(directory), dtype=torch.bfloat16)
    built = build_synthetic_pipeline(name, device="cpu", dtype=torch.bfloat16, seed=3, scale="narrow")
    for component, module in built.components.items():
        if not isinstance(module, torch.nn.Module):
            assert (module is None) == (loaded.components[component] is None), component
            continue
        mine, theirs = module.state_dict(), loaded.components[component].state_dict()
        assert mine.keys() == theirs.keys(), component
        for key, tensor in mine.items():
            assert theirs[key].dtype == tensor.dtype, f"{component}.{key}"  # keep-in-fp32 modules agree too
            assert torch.equal(theirs[key], tensor), f"{component}.{key}"
    assert loaded.tokenizer.vocab_size == built.tokenizer.vocab_size
    assert public(loaded.scheduler.config) == public(built.scheduler.config)
    assert loaded.config.boundary_ratio == built.config.boundary_ratio


def test_write_with_loras_writes_them_first_in_the_format_asked(tmp_path: Path):
    """`--lora` files fit the model: diffusers keys by default, kohya (ComfyUI) keys on request, one seed each."""
    from diffusers import WanImageToVideoPipeline
    from safetensors.torch import load_file

    directory, kohya = tmp_path / "wan22", tmp_path / "comfy.safetensors"
    code, out, err = invoke(
        "synthetic", "write", "wan22-i2v-a14b", str(directory), "--scale", "narrow", "--dtype", "float32",
        "--lora", str(kohya), "--lora-format", "kohya", "--lora-rank", "8",
    )  # fmt: skip
    assert code == 0, err
    assert out.split() == [str(kohya), str(directory)]
    tensors = load_file(str(kohya))
    assert "diffusion_model.blocks.0.self_attn.q.lora_down.weight" in tensors
    assert tensors["diffusion_model.blocks.0.self_attn.q.lora_down.weight"].shape[0] == 8
    assert float(tensors["diffusion_model.blocks.0.self_attn.q.alpha"]) == 8.0
    pipe = WanImageToVideoPipeline.from_pretrained(str(directory))
    pipe.load_lora_weights(str(kohya), adapter_name="comfy")
    pipe.load_lora_weights(str(kohya), adapter_name="comfy", load_into_transformer_2=True)
    assert pipe.get_list_adapters() == {"transformer": ["comfy"], "transformer_2": ["comfy"]}


@pytest.mark.parametrize(
    ("name", "lora_format", "reason"),
    [("svd-xt", "diffusers", "has no transformer"), ("ltx-video-2b", "kohya", "Wan transformers only")],
)
def test_a_lora_the_model_cannot_take_exits_2_before_the_model_is_written(tmp_path: Path, name, lora_format, reason):
    directory = tmp_path / "model"
    code, _, err = invoke(
        "synthetic", "write", name, str(directory), "--scale", "narrow",
        "--lora", str(tmp_path / "x.safetensors"), "--lora-format", lora_format,
    )  # fmt: skip
    assert code == 2 and reason in err
    assert not directory.exists()
