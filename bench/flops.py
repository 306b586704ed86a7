"""Estimated FLOPs per denoising step of a transformer denoiser, and the device peaks they are compared with.

Per forward pass of a denoiser with L blocks of attention width d (heads x head dim) on N latent tokens:

    2 x P_tok x N  +  4 x L x d x N^2  +  4 x L x d x N x T_cross

- P_tok: weights of the linear layers applied to every video token: in the repeated blocks (self-attention
  Q/K/V/O, cross-attention Q/O, feed-forward), plus the patch embedding and the output projection. Left out: the
  cross-attention K/V projections (they run on the T_cross context tokens, not on video tokens) and the linear
  layers of adaptive norms inside blocks (they project the timestep embedding once per sample).
- 4 x L x d x N^2: the attention scores (Q K^T) and their product with V, 2 x N^2 x d multiply-adds each.
- Joint attention (CogVideoX: the text tokens go through the blocks with the video tokens) replaces N by
  N + T_text in the block terms and has no cross-attention term.
- N = latent frames / patch_t x (H / vae_spatial / patch_h) x (W / vae_spatial / patch_w), from the VAE's
  compression and the transformer's patch size (read from the components' configs).
A step runs the forward twice when classifier-free guidance runs an unconditional pass (cfg > 1 for Wan,
LTX-Video and CogVideoX). UNet denoisers (SVD) have no such formula here: None.
Check (tested): Wan 2.1 I2V 14B gives 23.9 GFLOP x N + 0.82 MFLOP x N^2 per forward.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.families import FAMILIES

Config = Mapping[str, Any]

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s by device name; first match wins. Unknown devices: None.
PEAK_BF16_TFLOPS: tuple[tuple[str, re.Pattern[str], float], ...] = (
    ("H100 PCIe", re.compile(r"H100.*PCIe", re.IGNORECASE), 756.0),
    ("H100 SXM", re.compile(r"H100.*(SXM|HBM3)", re.IGNORECASE), 989.0),
    ("H200", re.compile(r"H200(?!.*NVL)", re.IGNORECASE), 989.0),
    ("A100", re.compile(r"A100", re.IGNORECASE), 312.0),
    ("L40S", re.compile(r"L40S", re.IGNORECASE), 362.0),
    ("L4", re.compile(r"\bL4\b", re.IGNORECASE), 121.0),
)

# Linear layers of a block that do not run on video tokens (see the module docstring).
_CONTEXT_PROJECTION = re.compile(r"(^|\.)attn2\.(to_k|to_v|add_k_proj|add_v_proj|to_kv|to_added_kv)$")
_NORM_MODULATION = re.compile(r"(^|\.)norm[^.]*\.")
_IO_PROJECTIONS = ("patch_embedding", "proj_in", "patch_embed.proj", "proj_out")


def device_peak_tflops(device_name: str | None) -> float | None:
    """The dense bf16 peak of a CUDA device by its name (torch.cuda.get_device_name); None when unknown."""
    if not device_name:
        return None
    for _label, pattern, peak in PEAK_BF16_TFLOPS:
        if pattern.search(device_name):
            return peak
    return None


@dataclass(frozen=True)
class TransformerShape:
    """What the formula needs from a transformer: blocks, width and the per-token linear weights."""

    layers: int
    width: int
    block_params: int
    io_params: int

    @property
    def per_token_params(self) -> int:
        return self.block_params + self.io_params

    def forward_flops(self, latent_tokens: int, joint_tokens: int = 0, cross_tokens: int = 0) -> float:
        sequence = latent_tokens + joint_tokens
        return float(
            2 * self.block_params * sequence
            + 2 * self.io_params * latent_tokens
            + 4 * self.layers * self.width * sequence**2
            + 4 * self.layers * self.width * latent_tokens * cross_tokens
        )


def shape_of(transformer: Any) -> TransformerShape:
    """Count a transformer module's per-token weights (works on the meta device: only shapes are read)."""
    import torch

    lists = [child for child in transformer.children() if isinstance(child, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(transformer).__name__} has no list of repeated blocks")
    blocks = max(lists, key=lambda blocks: sum(parameter.numel() for parameter in blocks.parameters()))
    block_params = sum(
        module.weight.numel()
        for block in blocks
        for name, module in block.named_modules()
        if isinstance(module, torch.nn.Linear)
        and not _CONTEXT_PROJECTION.search(name)
        and not _NORM_MODULATION.search(name)
    )
    io_params = 0
    for name in _IO_PROJECTIONS:
        try:
            io_params += transformer.get_submodule(name).weight.numel()
        except AttributeError:
            continue
    config = transformer.config
    return TransformerShape(
        layers=len(blocks),
        width=int(config["num_attention_heads"]) * int(config["attention_head_dim"]),
        block_params=block_params,
        io_params=io_params,
    )


@lru_cache(maxsize=16)
def _meta_transformer(config_json: str) -> tuple[TransformerShape, Config]:
    import diffusers
    from accelerate import init_empty_weights

    config = json.loads(config_json)
    model_class = getattr(diffusers, config["_class_name"])
    with init_empty_weights():
        transformer = model_class.from_config(config)
    return shape_of(transformer), dict(transformer.config)


def meta_transformer(config: Config) -> tuple[TransformerShape, Config]:
    """A diffusers transformer built from its config on the meta device (nothing allocated): its shape and its
    whole config (defaults filled in)."""
    return _meta_transformer(json.dumps(dict(config), sort_keys=True, default=list))


def transformer_shape(config: Config) -> TransformerShape:
    return meta_transformer(config)[0]


# -- latent tokens and context per family ---------------------------------------------------------------------
@dataclass(frozen=True)
class Tokens:
    latent: int
    joint: int = 0
    cross: int = 0


def _latent_frames(frames: int, temporal: int) -> int:
    return (frames - 1) // temporal + 1


def _wan_tokens(configs: Mapping[str, Config | None], width: int, height: int, frames: int, text: int) -> Tokens:
    transformer, vae = _required(configs, "transformer"), _required(configs, "vae")
    spatial, temporal = int(vae["scale_factor_spatial"]), int(vae["scale_factor_temporal"])
    patch_t, patch_h, patch_w = (int(side) for side in transformer["patch_size"])
    latent = (
        _latent_frames(frames, temporal) // patch_t * (height // spatial // patch_h) * (width // spatial // patch_w)
    )
    image_encoder = configs.get("image_encoder")
    image_tokens = 0
    if transformer.get("image_dim") is not None and image_encoder is not None:
        # Wan 2.1 I2V cross-attends to the CLIP image encoder's whole hidden sequence: patches + class token.
        image_tokens = (int(image_encoder["image_size"]) // int(image_encoder["patch_size"])) ** 2 + 1
    return Tokens(latent=latent, cross=text + image_tokens)


def _ltx_tokens(configs: Mapping[str, Config | None], width: int, height: int, frames: int, text: int) -> Tokens:
    transformer, vae = _required(configs, "transformer"), _required(configs, "vae")
    scaling = sum(bool(flag) for flag in vae.get("spatio_temporal_scaling", ()))
    spatial = vae.get("spatial_compression_ratio") or int(vae["patch_size"]) * 2**scaling
    temporal = vae.get("temporal_compression_ratio") or int(vae["patch_size_t"]) * 2**scaling
    patch, patch_t = int(transformer["patch_size"]), int(transformer["patch_size_t"])
    latent = (
        _latent_frames(frames, int(temporal))
        // patch_t
        * (height // int(spatial) // patch)
        * (width // int(spatial) // patch)
    )
    return Tokens(latent=latent, cross=text)


def _cogvideox_tokens(configs: Mapping[str, Config | None], width: int, height: int, frames: int, text: int) -> Tokens:
    transformer, vae = _required(configs, "transformer"), _required(configs, "vae")
    spatial = 2 ** (len(vae["block_out_channels"]) - 1)
    temporal = int(vae["temporal_compression_ratio"])
    patch, patch_t = int(transformer["patch_size"]), int(transformer.get("patch_size_t") or 1)
    # CogVideoX 1.5 pads the latent frames up to a multiple of patch_size_t.
    latent_frames = math.ceil(_latent_frames(frames, temporal) / patch_t)
    return Tokens(latent=latent_frames * (height // spatial // patch) * (width // spatial // patch), joint=text)


TokenRule = Callable[[Mapping[str, Config | None], int, int, int, int], Tokens]
TOKEN_RULES: dict[str, TokenRule] = {
    "wan-i2v": _wan_tokens,
    "wan22-i2v": _wan_tokens,
    "wan22-ti2v": _wan_tokens,
    "ltx-i2v": _ltx_tokens,
    "cogvideox-i2v": _cogvideox_tokens,
}


def _required(configs: Mapping[str, Config | None], component: str) -> Config:
    config = configs.get(component)
    if config is None:
        raise ValueError(f"no {component} config")
    return config


def text_tokens(family: str) -> int:
    """The prompt length the family's pipeline pads to: its `__call__` default `max_sequence_length` (the worker
    does not pass one)."""
    name = FAMILIES[family].pipeline_class
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        pipeline_class = getattr(importlib.import_module(module_name), attribute)
    else:
        import diffusers

        pipeline_class = getattr(diffusers, name)
    default = inspect.signature(pipeline_class.__call__).parameters["max_sequence_length"].default
    return int(default)


def guidance_passes(cfg: float) -> int:
    """Denoiser passes per step: classifier-free guidance adds an unconditional pass when cfg > 1 (the test of the
    Wan, LTX-Video and CogVideoX pipelines, and of SVD's max_guidance_scale, which the worker sets to cfg)."""
    return 2 if cfg > 1 else 1


@dataclass(frozen=True)
class StepFlops:
    tokens: Tokens
    shape: TransformerShape
    passes: int  # 2 when classifier-free guidance runs an unconditional pass
    forward_flops: float

    @property
    def flops_per_step(self) -> float:
        return self.forward_flops * self.passes


def step_flops(
    family: str, configs: Mapping[str, Config | None], *, width: int, height: int, frames: int, cfg: float
) -> StepFlops | None:
    """FLOPs of one denoising step for a request's shape; None for families without a formula (UNets)."""
    rule = TOKEN_RULES.get(family)
    if rule is None:
        return None
    shape, transformer = meta_transformer(_required(configs, "transformer"))
    tokens = rule({**configs, "transformer": transformer}, width, height, frames, text_tokens(family))
    forward = shape.forward_flops(tokens.latent, tokens.joint, tokens.cross)
    return StepFlops(tokens=tokens, shape=shape, passes=guidance_passes(cfg), forward_flops=forward)


def configs_of_pipeline(pipe: Any) -> dict[str, Config | None]:
    """The transformer, VAE and image encoder configs of a loaded pipeline (the first expert of two).

    A transformer constructed directly (a synthetic model) has no `_class_name` in its config, unlike one read
    from a checkpoint: it is taken from the instance, so the meta rebuild finds its class either way.
    """
    transformer = getattr(pipe, "transformer", None) or getattr(pipe, "transformer_2", None)
    vae = getattr(pipe, "vae", None)
    image_encoder = getattr(pipe, "image_encoder", None)
    return {
        "transformer": {"_class_name": type(transformer).__name__, **transformer.config}
        if transformer is not None
        else None,
        "vae": dict(vae.config) if vae is not None else None,
        "image_encoder": image_encoder.config.to_dict() if image_encoder is not None else None,
    }


def configs_of_checkpoint(directory: Path) -> dict[str, Config | None] | None:
    """The same configs read from a diffusers-format directory; None when it is not one (e.g. a synthetic model)."""
    if not (directory / "model_index.json").is_file():
        return None

    def read(component: str) -> Config | None:
        path = directory / component / "config.json"
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None

    return {
        "transformer": read("transformer") or read("transformer_2"),
        "vae": read("vae"),
        "image_encoder": read("image_encoder"),
    }
