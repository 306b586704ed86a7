"""CogVideoX-5B I2V 1.0 (THUDM/CogVideoX-5b-I2V) and 1.5 (THUDM/CogVideoX1.5-5B-I2V), as diffusers ships them.

Configs from huggingface/diffusers scripts/convert_cogvideox_to_diffusers.py with the 5B I2V arguments its help
text gives (num_layers 42, num_attention_heads 48, RoPE, in_channels 32, VAE scaling_factor 0.7, snr_shift_scale
1.0) and its scheduler and 226-token T5 v1.1 XXL tokenizer; `--version 1.0` or `1.5` picks the rest
(`get_transformer_init_kwargs`, `convert_vae`):

- 1.0 I2V has learned positional embeddings for its training size, so it runs at exactly 720x480 (the narrow
  scale: exactly 64x64); models.limits refuses other sizes before the model runs.
- 1.5 I2V patches 2 latent frames at once (`patch_size_t=2`), has no learned positional embeddings and an
  `ofs` embedding, and slices its 3D RoPE from tables of 300x300 latent units (2400 px): any size on the grid up to
  that runs. Its VAE reads latents with `invert_scale_latents`.
"""

from __future__ import annotations

from typing import Any

from models.synthetic.encoders import NARROW_TEXT_DIM, NARROW_VOCAB_SIZE, T5_V1_1_XXL, narrow_t5, t5_encoder
from models.synthetic.recipe import Recipe, Scale
from models.synthetic.tokenizer import build_tokenizer

COGVIDEOX_5B_I2V_TRANSFORMER: dict[str, Any] = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 32,  # noise latents + image latents
    "out_channels": 16,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "time_embed_dim": 512,
    "ofs_embed_dim": None,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "dropout": 0.0,
    "attention_bias": True,
    "sample_width": 90,  # latent units: 720 px
    "sample_height": 60,  # 480 px
    "sample_frames": 49,
    "patch_size": 2,
    "patch_size_t": None,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,
    "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu",
    "norm_elementwise_affine": True,
    "norm_eps": 1e-5,
    "spatial_interpolation_scale": 1.875,
    "temporal_interpolation_scale": 1.0,
    "use_rotary_positional_embeddings": True,
    "use_learned_positional_embeddings": True,
    "patch_bias": True,
}

# `--version 1.5 --i2v`: the transformer defaults with the 1.5 init kwargs, `ofs_embed_dim=512` and no learned
# positional embeddings.
COGVIDEOX15_5B_I2V_TRANSFORMER: dict[str, Any] = {
    **COGVIDEOX_5B_I2V_TRANSFORMER,
    "ofs_embed_dim": 512,
    "sample_width": 300,  # latent units: the RoPE tables cover 2400 px
    "sample_height": 300,
    "sample_frames": 81,
    "patch_size_t": 2,
    "use_learned_positional_embeddings": False,
    "patch_bias": False,
}

# AutoencoderKLCogVideoX defaults with the 5B scaling factor, spelled out.
COGVIDEOX_VAE: dict[str, Any] = {
    "block_out_channels": [128, 256, 256, 512],
    "latent_channels": 16,
    "layers_per_block": 3,
    "norm_eps": 1e-6,
    "norm_num_groups": 32,
    "temporal_compression_ratio": 4,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
}

COGVIDEOX15_VAE: dict[str, Any] = {**COGVIDEOX_VAE, "invert_scale_latents": True}

COGVIDEOX_SCHEDULER: dict[str, Any] = {
    "snr_shift_scale": 1.0,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "timestep_spacing": "trailing",
}

COGVIDEOX_TOKENIZER_MAX_LENGTH = 226  # convert_cogvideox_to_diffusers.py TOKENIZER_MAX_LENGTH

NARROW_SIDE = 64  # the only size the narrow 1.0 learned positional embeddings accept


def _narrow_transformer(full: dict[str, Any]) -> dict[str, Any]:
    narrow = {
        **full,
        "num_attention_heads": 2,
        "attention_head_dim": 16,  # 3D RoPE splits the head dim into t/h/w parts: a multiple of 16
        "time_embed_dim": 16,
        "text_embed_dim": NARROW_TEXT_DIM,
        "num_layers": 2,
    }
    if full["use_learned_positional_embeddings"]:  # a table per position: kept small
        narrow.update(sample_width=NARROW_SIDE // 8, sample_height=NARROW_SIDE // 8)
    if full["ofs_embed_dim"] is not None:
        narrow["ofs_embed_dim"] = 16
    return narrow


def _narrow_vae(full: dict[str, Any]) -> dict[str, Any]:
    return {**full, "block_out_channels": [8, 8, 8, 8], "layers_per_block": 1, "norm_num_groups": 2}


def _scheduler() -> Any:
    from diffusers import CogVideoXDDIMScheduler

    return CogVideoXDDIMScheduler.from_config(COGVIDEOX_SCHEDULER)


def _transformer(config: dict[str, Any]) -> Any:
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(**config)


def _vae(config: dict[str, Any]) -> Any:
    from diffusers import AutoencoderKLCogVideoX

    return AutoencoderKLCogVideoX(**config)


def _recipe(scale: Scale, transformer: dict[str, Any], vae: dict[str, Any]) -> Recipe:
    full = scale == "full"
    text = T5_V1_1_XXL if full else narrow_t5(T5_V1_1_XXL)
    vocab = T5_V1_1_XXL["vocab_size"] if full else NARROW_VOCAB_SIZE
    transformer = transformer if full else _narrow_transformer(transformer)
    vae = vae if full else _narrow_vae(vae)
    return Recipe(
        modules={
            "text_encoder": lambda: t5_encoder(text),
            "vae": lambda: _vae(vae),
            "transformer": lambda: _transformer(transformer),
        },
        others={
            "tokenizer": lambda: build_tokenizer(vocab, COGVIDEOX_TOKENIZER_MAX_LENGTH),
            "scheduler": _scheduler,
        },
    )


def cogvideox_5b_i2v(scale: Scale) -> Recipe:
    """CogVideoX-5B I2V 1.0: T5-XXL encoder, CogVideoX VAE (8x space, 4x time), 42-layer transformer, 720x480."""
    return _recipe(scale, COGVIDEOX_5B_I2V_TRANSFORMER, COGVIDEOX_VAE)


def cogvideox15_5b_i2v(scale: Scale) -> Recipe:
    """CogVideoX1.5-5B I2V: as 1.0 with temporal patches, an ofs embedding and RoPE for any size on the grid."""
    return _recipe(scale, COGVIDEOX15_5B_I2V_TRANSFORMER, COGVIDEOX15_VAE)
