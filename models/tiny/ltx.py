"""A tiny LTX-Video image-to-video checkpoint with the real latent geometry.

The VAE compresses 32x in space (patch 4 x three 2x stages) and 8x in time, like LTX-Video, so the tiny
model enforces the same size and frame grids as the real one (sides multiple of 32, frames 8k+1).
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.tokenizer import build_tokenizer, tiny_t5_config


def build_ltx_i2v(directory: Path, seed: int = 0) -> None:
    """LTX I2V: T5 text encoder, LTX VAE (32x / 8x compression) and a 1-layer transformer."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_dim, latent_channels = 32, 8
    text_encoder = T5EncoderModel(tiny_t5_config(T5Config, text_dim))
    transformer = LTXVideoTransformer3DModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=text_dim,
    )
    vae = AutoencoderKLLTXVideo(
        latent_channels=latent_channels,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
    )
    pipe = LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tokenizer(),
        transformer=transformer,
    )
    pipe.save_pretrained(str(directory))
