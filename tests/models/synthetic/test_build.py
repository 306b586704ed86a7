"""Building synthetic pipelines: weights born on meta in the target dtype, real buffers, sane scales, finite runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from models.synthetic import SYNTHETIC_MODELS, UnknownSyntheticModel, build_synthetic_pipeline, lookup
from models.synthetic.materialize import materialize
from models.synthetic.skeleton import everything_on_meta, parameters_on_meta
from pipelines.families import FAMILIES


@contextmanager
def registered_parameters() -> Iterator[list[tuple[str, torch.dtype, str]]]:
    """Every parameter any module registers inside the block: (name, dtype, device type)."""
    seen: list[tuple[str, torch.dtype, str]] = []

    def hook(_module: torch.nn.Module, name: str, param: torch.Tensor | None) -> None:
        if param is not None:
            seen.append((name, param.dtype, param.device.type))

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def narrow(name: str, dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> Any:
    return build_synthetic_pipeline(name, device="cpu", dtype=dtype, seed=seed, scale="narrow")


def modules(pipe: Any) -> dict[str, torch.nn.Module]:
    return {name: value for name, value in pipe.components.items() if isinstance(value, torch.nn.Module)}


@pytest.mark.parametrize("name", sorted(SYNTHETIC_MODELS))
def test_the_pipeline_is_the_familys_class_with_every_weight_born_on_meta_in_bfloat16(name):
    with registered_parameters() as seen:
        pipe = narrow(name)
    assert type(pipe).__name__ == FAMILIES[lookup(name).family].pipeline_class
    assert seen, "no parameter was registered"
    assert {device for _, _, device in seen} == {"meta"}
    assert {dtype for _, dtype, _ in seen} == {torch.bfloat16}
    for component, module in modules(pipe).items():
        assert {param.device.type for param in module.parameters()} == {"cpu"}, component
        assert all(not param.requires_grad for param in module.parameters()), component
        assert not module.training, component


@pytest.mark.parametrize("name", ["ltx-video-2b", "cogvideox-5b-i2v", "svd-xt"])
def test_bfloat16_builds_hold_no_float32_parameter(name):
    for component, module in modules(narrow(name)).items():
        assert {param.dtype for param in module.parameters()} == {torch.bfloat16}, component


def test_wan_keeps_float32_exactly_where_its_class_pins_it_like_from_pretrained():
    transformer = narrow("wan21-i2v-14b-480p").transformer
    pinned = set(type(transformer)._keep_in_fp32_modules)  # rope, time_embedder, scale_shift_table, norm1..3
    for name, param in transformer.named_parameters():
        expected = torch.float32 if pinned & set(name.split(".")) else torch.bfloat16
        assert param.dtype == expected, name
    assert any(param.dtype == torch.float32 for param in transformer.parameters())


def test_tied_embeddings_stay_tied():
    text_encoder = narrow("ltx-video-2b").text_encoder
    assert text_encoder.shared.weight is text_encoder.encoder.embed_tokens.weight


def test_buffers_computed_in_init_keep_their_real_values():
    wan = narrow("wan21-i2v-14b-480p")
    recipe = lookup("wan21-i2v-14b-480p").recipe("narrow")
    fresh = recipe.modules["transformer"]()  # an ordinary CPU construction: its buffers are the reference
    assert torch.equal(wan.transformer.rope.freqs_cos, fresh.rope.freqs_cos)
    assert torch.equal(wan.transformer.rope.freqs_sin, fresh.rope.freqs_sin)
    position_ids = dict(wan.image_encoder.named_buffers())["embeddings.position_ids"]
    assert torch.equal(position_ids[0], torch.arange(257))  # 16x16 patches of 14 px + the class token

    cog = narrow("cogvideox-5b-i2v")
    reference = lookup("cogvideox-5b-i2v").recipe("narrow").modules["transformer"]().patch_embed.pos_embedding
    # persistent (saved in checkpoints, so loaded in the target dtype), hence cast like from_pretrained does
    assert torch.equal(cog.transformer.patch_embed.pos_embedding, reference.to(torch.bfloat16))
    assert cog.transformer.patch_embed.pos_embedding.abs().max() > 0.5  # sin-cos values, not zeros


def test_full_size_skeleton_holds_no_weights_but_real_rotary_tables():
    with parameters_on_meta(torch.bfloat16):
        transformer = lookup("wan21-i2v-14b-480p").recipe("full").modules["transformer"]()
    assert {(param.device.type, param.dtype) for param in transformer.parameters()} == {("meta", torch.bfloat16)}
    cos = transformer.rope.freqs_cos
    assert cos.device.type == "cpu" and cos.shape == (1024, 128)
    assert torch.isfinite(cos).all() and cos[0].eq(1.0).all() and cos[1:].ne(1.0).any()


def test_materializing_a_model_whose_buffers_were_lost_on_meta_is_refused():
    with everything_on_meta():
        transformer = lookup("wan21-i2v-14b-480p").recipe("narrow").modules["transformer"]()
    with pytest.raises(ValueError, match=r"buffer 'rope.freqs_cos' of WanTransformer3DModel has no values"):
        materialize(transformer, device=torch.device("cpu"), dtype=torch.bfloat16, seed=0)


def test_weights_have_the_documented_scales():
    text_encoder = narrow("ltx-video-2b", dtype=torch.float32).text_encoder
    layer = text_encoder.encoder.block[0].layer
    wi = layer[1].DenseReluDense.wi_0.weight  # Linear(32 -> 32): fan-in scaled normal
    assert float(wi.std()) == pytest.approx(1 / 32**0.5, rel=0.15)
    assert float(text_encoder.shared.weight.std()) == pytest.approx(1.0, rel=0.15)  # embedding: standard normal
    assert torch.equal(layer[0].layer_norm.weight, torch.ones(32))  # norm scales: ones
    vae = narrow("svd-xt", dtype=torch.float32).vae
    assert torch.equal(vae.encoder.conv_in.bias, torch.zeros_like(vae.encoder.conv_in.bias))  # biases: zeros


def test_same_seed_gives_the_same_weights_another_seed_others():
    first, again, other = (narrow("svd-xt", seed=seed).unet.state_dict() for seed in (0, 0, 1))
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert any(not torch.equal(first[key], other[key]) for key in first if first[key].numel() > 1)


def _call_kwargs(family: str) -> dict[str, Any]:
    """The fewest frames each family takes, with classifier-free guidance on (a doubled batch)."""
    if family == "svd":
        return {"num_frames": 3, "decode_chunk_size": 3, "max_guidance_scale": 2.0}
    frames = FAMILIES[family].frame_rule.snap(1)
    kwargs: dict[str, Any] = {"prompt": "Mira waves", "negative_prompt": "blurry", "num_frames": frames}
    kwargs["guidance_scale"] = 3.0
    if family == "ltx-i2v":
        kwargs["frame_rate"] = 8
    return kwargs


# One name per recipe: wan21-i2v-14b-720p is the 480p architecture under another name.
DISTINCT = sorted({model.recipe: name for name, model in sorted(SYNTHETIC_MODELS.items(), reverse=True)}.values())


@pytest.mark.parametrize("name", DISTINCT)
def test_a_bfloat16_pipeline_call_stays_finite_at_every_denoising_step(name):
    pipe = narrow(name)
    pipe.set_progress_bar_config(disable=True)
    denoiser = pipe.unet if name == "svd-xt" else pipe.transformer
    assert denoiser.dtype == torch.bfloat16
    steps: list[bool] = []

    def check(_pipe: Any, _step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        steps.append(bool(torch.isfinite(tensors["latents"]).all()))
        return tensors

    output = pipe(
        image=Image.new("RGB", (64, 64), (200, 120, 40)),
        height=64,
        width=64,
        num_inference_steps=2,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=check,
        **_call_kwargs(lookup(name).family),
    )
    assert steps == [True, True]
    frames = np.asarray(output.frames[0], dtype=np.float32)
    assert frames.shape[1:] == (64, 64, 3)
    assert np.isfinite(frames).all() and frames.std() > 0


def test_unknown_name_is_refused_with_the_known_names():
    with pytest.raises(UnknownSyntheticModel, match=r"unknown synthetic model 'wan-3'; known: cogvideox-5b-i2v, "):
        build_synthetic_pipeline("wan-3", device="cpu", dtype=torch.bfloat16)
