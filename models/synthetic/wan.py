"""Wan 2.1 I2V 14B (480p, 720p), Wan 2.2 TI2V 5B and Wan 2.2 I2V A14B, as diffusers ships them.

Transformer and VAE configs are those of huggingface/diffusers scripts/convert_wan_to_diffusers.py
(`get_transformer_config` for "Wan-I2V-14B-480p", "Wan-I2V-14B-720p", "Wan2.2-TI2V-5B" and "Wan2.2-I2V-14B-720p";
`AutoencoderKLWan()` for the Wan 2.1 VAE; `vae22_diffusers_config` for the Wan 2.2 VAE), which wrote the
Wan-AI/*-Diffusers checkpoints; so are the scheduler (UniPC with flow sigmas and the script's flow_shift) and the
pipeline arguments (`boundary_ratio=0.9` for the A14B experts, `expand_timesteps=True` for TI2V 5B). The 480p
and 720p Wan 2.1 checkpoints share one architecture and differ only in trained weights.
"""

from __future__ import annotations

from typing import Any

from models.synthetic.encoders import (
    NARROW_TEXT_DIM,
    NARROW_VOCAB_SIZE,
    UMT5_XXL,
    VIT_H_14,
    clip_image_processor,
    clip_vision,
    narrow_t5,
    narrow_vit,
    umt5_encoder,
)
from models.synthetic.recipe import Recipe, Scale
from models.synthetic.tokenizer import build_tokenizer

# convert_wan_to_diffusers.py, "Wan-I2V-14B-480p" and "Wan-I2V-14B-720p" (identical).
WAN21_I2V_14B_TRANSFORMER: dict[str, Any] = {
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "in_channels": 36,
    "num_attention_heads": 40,
    "num_layers": 40,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
}

# convert_wan_to_diffusers.py, "Wan2.2-I2V-14B-720p" (both the high-noise and the low-noise expert): no CLIP
# image branch, the start frame enters through the VAE latents only.
WAN22_I2V_A14B_TRANSFORMER: dict[str, Any] = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "in_channels": 36,
    "num_attention_heads": 40,
    "num_layers": 40,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
}

# convert_wan_to_diffusers.py, "Wan2.2-TI2V-5B".
WAN22_TI2V_5B_TRANSFORMER: dict[str, Any] = {
    "added_kv_proj_dim": None,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 14336,
    "freq_dim": 256,
    "in_channels": 48,
    "num_attention_heads": 24,
    "num_layers": 30,
    "out_channels": 48,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
}

# convert_wan_to_diffusers.py `convert_vae()`: `AutoencoderKLWan()` with its defaults, spelled out.
WAN21_VAE: dict[str, Any] = {
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
}

# The Wan 2.2 VAE's latent statistics, from convert_wan_to_diffusers.py `vae22_diffusers_config`.
# fmt: off
WAN22_LATENTS_MEAN: list[float] = [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
    0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313, -0.1649, 0.0117, 0.0723,
    -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
]
WAN22_LATENTS_STD: list[float] = [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
]
# fmt: on

# convert_wan_to_diffusers.py `vae22_diffusers_config` (its "clip_output": False is not an AutoencoderKLWan
# argument in this diffusers version and is left out).
WAN22_VAE: dict[str, Any] = {
    "base_dim": 160,
    "z_dim": 48,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "decoder_base_dim": 256,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 16,
    "patch_size": 2,
    "latents_mean": WAN22_LATENTS_MEAN,
    "latents_std": WAN22_LATENTS_STD,
}

WAN_TOKENIZER_MAX_LENGTH = 512  # the pipelines' max_sequence_length (umt5-xxl's tokenizer)
_NARROW_HEADS, _NARROW_HEAD_DIM = 2, 16  # Wan's 3D RoPE splits the head dim into t/h/w parts
_NARROW_IMAGE_DIM = 32


def _narrow_transformer(full: dict[str, Any]) -> dict[str, Any]:
    narrow = {
        **full,
        "num_attention_heads": _NARROW_HEADS,
        "attention_head_dim": _NARROW_HEAD_DIM,
        "ffn_dim": 64,
        "num_layers": 2,
        "text_dim": NARROW_TEXT_DIM,
    }
    if full.get("image_dim") is not None:
        narrow["image_dim"] = _NARROW_IMAGE_DIM
        narrow["added_kv_proj_dim"] = _NARROW_HEADS * _NARROW_HEAD_DIM
    return narrow


def _narrow_vae(full: dict[str, Any]) -> dict[str, Any]:
    narrow = {**full, "base_dim": 3, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
    if "decoder_base_dim" in full:
        narrow["decoder_base_dim"] = 3
    return narrow


def _transformer(config: dict[str, Any]) -> Any:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**config)


def _vae(config: dict[str, Any]) -> Any:
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(**config)


def _scheduler(flow_shift: float) -> Any:
    """The conversion script's scheduler: flow_shift 5.0 for TI2V, 3.0 for the other I2V models."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=flow_shift
    )


def _text(scale: Scale) -> tuple[dict[str, Any], int]:
    config = UMT5_XXL if scale == "full" else narrow_t5(UMT5_XXL)
    return config, (UMT5_XXL["vocab_size"] if scale == "full" else NARROW_VOCAB_SIZE)


def wan21_i2v_14b(scale: Scale) -> Recipe:
    """Wan 2.1 I2V 14B: umT5-XXL, CLIP ViT-H/14 (CLIPVisionModel), Wan 2.1 VAE, one 14B transformer."""
    text, vocab = _text(scale)
    transformer = WAN21_I2V_14B_TRANSFORMER if scale == "full" else _narrow_transformer(WAN21_I2V_14B_TRANSFORMER)
    vae = WAN21_VAE if scale == "full" else _narrow_vae(WAN21_VAE)
    vision = VIT_H_14 if scale == "full" else narrow_vit(_NARROW_IMAGE_DIM, _NARROW_IMAGE_DIM)
    return Recipe(
        modules={
            "text_encoder": lambda: umt5_encoder(text),
            "image_encoder": lambda: clip_vision(vision, with_projection=False),
            "vae": lambda: _vae(vae),
            "transformer": lambda: _transformer(transformer),
        },
        others={
            "tokenizer": lambda: build_tokenizer(vocab, WAN_TOKENIZER_MAX_LENGTH),
            "image_processor": clip_image_processor,
            "scheduler": lambda: _scheduler(3.0),
        },
    )


def wan22_ti2v_5b(scale: Scale) -> Recipe:
    """Wan 2.2 TI2V 5B: umT5-XXL, Wan 2.2 VAE (48 channels, 16x spatial), one 5B transformer, per-token timesteps."""
    text, vocab = _text(scale)
    transformer = WAN22_TI2V_5B_TRANSFORMER if scale == "full" else _narrow_transformer(WAN22_TI2V_5B_TRANSFORMER)
    vae = WAN22_VAE if scale == "full" else _narrow_vae(WAN22_VAE)
    return Recipe(
        modules={
            "text_encoder": lambda: umt5_encoder(text),
            "vae": lambda: _vae(vae),
            "transformer": lambda: _transformer(transformer),
        },
        others={
            "tokenizer": lambda: build_tokenizer(vocab, WAN_TOKENIZER_MAX_LENGTH),
            "scheduler": lambda: _scheduler(5.0),
        },
        absent=("image_encoder", "image_processor", "transformer_2"),
        config={"expand_timesteps": True},
    )


def wan22_i2v_a14b(scale: Scale) -> Recipe:
    """Wan 2.2 I2V A14B: umT5-XXL, Wan 2.1 VAE, a high-noise `transformer` and a low-noise `transformer_2`."""
    text, vocab = _text(scale)
    expert = WAN22_I2V_A14B_TRANSFORMER if scale == "full" else _narrow_transformer(WAN22_I2V_A14B_TRANSFORMER)
    vae = WAN21_VAE if scale == "full" else _narrow_vae(WAN21_VAE)
    return Recipe(
        modules={
            "text_encoder": lambda: umt5_encoder(text),
            "vae": lambda: _vae(vae),
            "transformer": lambda: _transformer(expert),
            "transformer_2": lambda: _transformer(expert),
        },
        others={
            "tokenizer": lambda: build_tokenizer(vocab, WAN_TOKENIZER_MAX_LENGTH),
            "scheduler": lambda: _scheduler(3.0),
        },
        absent=("image_encoder", "image_processor"),
        config={"boundary_ratio": 0.9},
    )
