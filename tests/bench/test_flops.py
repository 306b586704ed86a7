"""The FLOPs formula: pinned for Wan 2.1 I2V 14B, counted against torch's FLOP counter on a real (tiny) transformer,
and its token counts checked against what each family's transformer actually receives."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import pytest
import torch
from PIL import Image
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench.flops import (
    configs_of_checkpoint,
    configs_of_pipeline,
    device_peak_tflops,
    guidance_passes,
    shape_of,
    step_flops,
    transformer_shape,
)
from npc_video_client.contract import QualityPreset
from pipelines.families import FAMILIES
from pipelines.request import ResolvedRequest

# The published Wan 2.1 I2V 14B transformer config (Wan-AI/Wan2.1-I2V-14B-480P-Diffusers).
WAN_14B = {
    "_class_name": "WanTransformer3DModel",
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 36,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
    "rope_max_seq_len": 1024,
}
WAN_VAE = {"scale_factor_spatial": 8, "scale_factor_temporal": 4}
CLIP_VIT_H_14 = {"image_size": 224, "patch_size": 14}
TRANSFORMER_FAMILIES = ["cogvideox-i2v", "ltx-i2v", "wan-i2v", "wan22-i2v", "wan22-ti2v"]


def test_wan_14b_per_forward_flops_are_24_gflop_per_token_and_0_82_mflop_per_token_pair() -> None:
    shape = transformer_shape(WAN_14B)  # built on the meta device
    assert (shape.layers, shape.width) == (40, 5120)
    # per block: self-attention Q/K/V/O and cross-attention Q/O (6 d^2) + the feed-forward (2 d x 13824)
    assert shape.block_params == 40 * (6 * 5120**2 + 2 * 5120 * 13824)
    assert shape.io_params == 36 * 2 * 2 * 5120 + 5120 * 16 * 2 * 2  # patch embedding + output projection
    assert 2 * shape.per_token_params == pytest.approx(23.91e9, rel=1e-3)
    assert 2 * shape.per_token_params == pytest.approx(24.5e9, rel=0.03)  # the brief's "about 24.5 GFLOP x N"
    assert 4 * shape.layers * shape.width == 819_200  # "0.82 MFLOP x N^2"


def test_a_480p_wan_14b_step_counts_its_tokens_and_doubles_for_guidance() -> None:
    configs = {"transformer": WAN_14B, "vae": WAN_VAE, "image_encoder": CLIP_VIT_H_14}
    flops = step_flops("wan-i2v", configs, width=832, height=480, frames=81, cfg=5.0)
    assert flops is not None
    # 21 latent frames x 30 x 52 patches; context: 512 text tokens + 257 CLIP tokens
    assert (flops.tokens.latent, flops.tokens.cross, flops.passes) == (21 * 30 * 52, 769, 2)
    n, shape = 32760, flops.shape
    per_forward = 2 * shape.per_token_params * n + 819_200 * n**2 + 819_200 * n * 769
    assert flops.forward_flops == per_forward
    assert flops.flops_per_step == 2 * per_forward
    without_guidance = step_flops("wan-i2v", configs, width=832, height=480, frames=81, cfg=1.0)
    assert without_guidance is not None and without_guidance.flops_per_step == per_forward
    assert step_flops("svd", {}, width=1024, height=576, frames=14, cfg=3.0) is None  # UNet: no formula


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA GeForce RTX 4090", None),
        (None, None),
    ],
)
def test_device_peaks_by_name(name: str | None, peak: float | None) -> None:
    assert device_peak_tflops(name) == peak


def test_guidance_passes() -> None:
    assert (guidance_passes(1.0), guidance_passes(1.5), guidance_passes(0.0)) == (1, 2, 1)


@pytest.fixture(scope="module")
def tiny_dirs(model_dir: Callable[..., Path]) -> dict[str, Path]:
    return {family: model_dir(family) for family in TRANSFORMER_FAMILIES}


def test_the_formula_equals_torchs_flop_count_of_a_real_transformer(tiny_dirs: dict[str, Path]) -> None:
    """torch.utils.flop_counter counts every matmul of a forward; the formula's terms are the blocks (minus the
    context K/V projections), the patch embedding and the output projection."""
    transformer = diffusers.WanTransformer3DModel.from_pretrained(str(tiny_dirs["wan-i2v"] / "transformer"))
    text, image = 512, (224 // 14) ** 2 + 1  # the CLIP of Wan 2.1: 224 px images, 14 px patches, a class token
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False, depth=None) as counter:
        transformer(
            hidden_states=torch.randn(1, 36, 3, 8, 8),  # 3 latent frames of 8x8: 3 x 4 x 4 = 48 tokens
            timestep=torch.tensor([500]),
            encoder_hidden_states=torch.randn(1, text, transformer.config.text_dim),
            encoder_hidden_states_image=torch.randn(1, image, transformer.config.image_dim),
        )
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    prefix = "WanTransformer3DModel"
    context = r"\.blocks\.\d+\.attn2\.(to_k|to_v|add_k_proj|add_v_proj)$"
    counted = (
        sum(flops for name, flops in counts.items() if re.fullmatch(rf"{prefix}\.blocks\.\d+", name))
        - sum(flops for name, flops in counts.items() if re.search(context, name))
        + counts[f"{prefix}.patch_embedding"]
        + counts[f"{prefix}.proj_out"]
    )
    assert shape_of(transformer).forward_flops(48, cross_tokens=text + image) == counted


def _request(family: str) -> ResolvedRequest:
    takes_prompt = FAMILIES[family].takes_prompt
    return ResolvedRequest(
        model="tiny",
        family=family,
        preset=QualityPreset.FAST,
        width=64,
        height=64,
        num_frames=9,
        fps=8,
        generated_frames=9,
        generated_fps=8,
        steps=2,  # LTX's scheduler takes two at least (pipelines.limits)
        cfg=2.0,
        seed=0,
        prompt="a smiling face" if takes_prompt else None,
        negative_prompt="blurry" if takes_prompt else None,
        loras=(),
        motion=0.5,
    )


@pytest.mark.parametrize("family", TRANSFORMER_FAMILIES)
def test_token_counts_are_what_the_transformer_blocks_receive(family: str, tiny_dirs: dict[str, Path]) -> None:
    pipe = getattr(diffusers, FAMILIES[family].pipeline_class).from_pretrained(str(tiny_dirs[family]))
    pipe.set_progress_bar_config(disable=True)
    transformer = pipe.transformer
    blocks = transformer.transformer_blocks if hasattr(transformer, "transformer_blocks") else transformer.blocks
    seen: dict[str, Any] = {}

    def capture(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        values = [*args, kwargs.get("hidden_states"), kwargs.get("encoder_hidden_states")]
        tensors = [value for value in values if isinstance(value, torch.Tensor)]
        seen.setdefault("shapes", (tensors[0].shape, tensors[1].shape))

    blocks[0].register_forward_pre_hook(capture, with_kwargs=True)
    request = _request(family)
    pipe(
        **FAMILIES[family].call_kwargs(request, Image.new("RGB", (64, 64))), generator=torch.Generator().manual_seed(0)
    )

    video, context = seen["shapes"]
    configs = configs_of_pipeline(pipe)
    flops = step_flops(family, configs, width=64, height=64, frames=9, cfg=2.0)
    assert flops is not None
    assert flops.tokens.latent == video[1]
    assert flops.tokens.cross + flops.tokens.joint == context[1]
    # the same figures from the checkpoint folder (the queue path) and from the loaded module (the meta build)
    assert (
        step_flops(family, configs_of_checkpoint(tiny_dirs[family]) or {}, width=64, height=64, frames=9, cfg=2.0)
        == flops
    )
    assert shape_of(transformer) == flops.shape
