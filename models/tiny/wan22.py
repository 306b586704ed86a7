"""Tiny Wan 2.2 checkpoints (A14B two-expert I2V, TI2V-5B) and a ComfyUI-format LoRA for them.

Both load as `WanImageToVideoPipeline` without an image encoder: Wan 2.2 conditions on the VAE latents of
the start frame only. A14B splits denoising between two experts at `boundary_ratio`; TI2V-5B uses the
Wan 2.2 VAE (48 latent channels, 16x spatial compression) and per-token timesteps (`expand_timesteps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.tiny.tokenizer import build_tokenizer, tiny_t5_config

_TEXT_DIM = 32
_HEADS, _HEAD_DIM = 2, 12
_LAYERS = 2
# The real Wan2.2-I2V-A14B value: the high-noise expert runs while t >= 0.9 * 1000.
_I2V_BOUNDARY_RATIO = 0.9


def _text_encoder() -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(tiny_t5_config(UMT5Config, _TEXT_DIM))


def _transformer(in_channels: int, out_channels: int) -> Any:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=_HEADS,
        attention_head_dim=_HEAD_DIM,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=_TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # the real models' value: long clips and large sides fit
    )


def build_wan22_i2v(directory: Path, seed: int = 0) -> None:
    """Wan 2.2 I2V A14B: Wan 2.1 VAE, a high-noise `transformer` and a low-noise `transformer_2`."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=build_tokenizer(),
        text_encoder=_text_encoder(),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=_transformer(in_channels=36, out_channels=16),  # noise 16 + mask 4 + image latents 16
        transformer_2=_transformer(in_channels=36, out_channels=16),
        boundary_ratio=_I2V_BOUNDARY_RATIO,
    )
    pipe.save_pretrained(str(directory))


def build_wan22_ti2v(directory: Path, seed: int = 0) -> None:
    """Wan 2.2 TI2V-5B: Wan 2.2 VAE (z_dim 48, patchified, 16x spatial) and one transformer."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        temperal_downsample=[False, True, True],
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=build_tokenizer(),
        text_encoder=_text_encoder(),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=_transformer(in_channels=48, out_channels=48),
        expand_timesteps=True,
    )
    pipe.save_pretrained(str(directory))


_ATTENTION_TARGETS = [f"{attention}.{projection}" for attention in ("self_attn", "cross_attn") for projection in "qkvo"]


def write_tiny_wan22_lora(path: Path, *, seed: int, rank: int = 4) -> None:
    """A random LoRA for the tiny Wan 2.2 transformers in ComfyUI/kohya keys, as Wan 2.2 LoRAs are published
    (`diffusion_model.blocks.N.self_attn.q.lora_down.weight` + `alpha`). It fits either expert and the 5B model.
    """
    from safetensors.torch import save_file

    dim = _HEADS * _HEAD_DIM
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for block in range(_LAYERS):
        for target in _ATTENTION_TARGETS:
            prefix = f"diffusion_model.blocks.{block}.{target}"
            tensors[f"{prefix}.lora_down.weight"] = torch.randn(rank, dim, generator=generator) * 0.5
            tensors[f"{prefix}.lora_up.weight"] = torch.randn(dim, rank, generator=generator) * 0.5
            tensors[f"{prefix}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path))
