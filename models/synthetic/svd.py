"""Stable Video Diffusion XT (stabilityai/stable-video-diffusion-img2vid-xt), as diffusers ships it.

Configs are the checkpoint's published unet/config.json, vae/config.json, image_encoder/config.json (open-clip
ViT-H/14 as CLIPVisionModelWithProjection), feature_extractor/preprocessor_config.json and
scheduler/scheduler_config.json. SVD has no text encoder and no tokenizer.
"""

from __future__ import annotations

from typing import Any

from models.synthetic.encoders import VIT_H_14, clip_image_processor, clip_vision, narrow_vit
from models.synthetic.recipe import Recipe, Scale

SVD_XT_UNET: dict[str, Any] = {
    "sample_size": 96,
    "in_channels": 8,  # noise latents + start-frame latents
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768,  # 3 added time ids (fps, motion bucket, noise aug) x 256
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
}

SVD_XT_VAE: dict[str, Any] = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "out_channels": 3,
    "sample_size": 768,
    "scaling_factor": 0.18215,
}

SVD_XT_SCHEDULER: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}

_NARROW_EMBED_DIM, _NARROW_TIME_DIM = 32, 8
_NARROW_UNET: dict[str, Any] = {
    **SVD_XT_UNET,
    # The resnets' GroupNorm has 32 groups. At 64x64 px the last block sees 1x1 latents: with one channel per group
    # it would normalise single values (rounding noise divided by sqrt(eps)); two channels per group keep it sane.
    "block_out_channels": [32, 64, 64, 64],
    "addition_time_embed_dim": _NARROW_TIME_DIM,
    "projection_class_embeddings_input_dim": 3 * _NARROW_TIME_DIM,
    "layers_per_block": 1,
    "cross_attention_dim": _NARROW_EMBED_DIM,
    "num_attention_heads": [2, 2, 2, 2],
}
_NARROW_VAE: dict[str, Any] = {**SVD_XT_VAE, "block_out_channels": [32, 32, 32, 32], "layers_per_block": 1}


def _scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_config(SVD_XT_SCHEDULER)


def _unet(config: dict[str, Any]) -> Any:
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(**config)


def _vae(config: dict[str, Any]) -> Any:
    from diffusers import AutoencoderKLTemporalDecoder

    return AutoencoderKLTemporalDecoder(**config)


def svd_xt(scale: Scale) -> Recipe:
    """SVD-XT: CLIP ViT-H/14 with projection, temporal-decoder VAE, spatio-temporal UNet (25 frames)."""
    full = scale == "full"
    vision = VIT_H_14 if full else narrow_vit(_NARROW_EMBED_DIM, _NARROW_EMBED_DIM)
    unet = SVD_XT_UNET if full else _NARROW_UNET
    vae = SVD_XT_VAE if full else _NARROW_VAE
    return Recipe(
        modules={
            "image_encoder": lambda: clip_vision(vision, with_projection=True),
            "vae": lambda: _vae(vae),
            "unet": lambda: _unet(unet),
        },
        others={"feature_extractor": clip_image_processor, "scheduler": _scheduler},
    )
