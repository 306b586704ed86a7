"""A tiny CogVideoX 1.5-style image-to-video checkpoint.

It follows CogVideoX1.5-5B-I2V rather than CogVideoX-5b-I2V: temporal patches (`patch_size_t=2`), 3D RoPE
and no learned positional embeddings, so any size on the 16-pixel grid works (1.0 I2V is fixed at 720x480).
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.tokenizer import build_tokenizer, tiny_t5_config


def build_cogvideox_i2v(directory: Path, seed: int = 0) -> None:
    """CogVideoX I2V: T5 text encoder, CogVideoX VAE (8x space, 4x time) and a 1-layer transformer."""
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_dim, latent_channels = 32, 4
    text_encoder = T5EncoderModel(tiny_t5_config(T5Config, text_dim))
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,  # 3D RoPE splits the head dim into t/h/w parts: a multiple of 16
        in_channels=2 * latent_channels,  # noise latents + start-frame latents
        out_channels=latent_channels,
        time_embed_dim=8,
        ofs_embed_dim=8,
        text_embed_dim=text_dim,
        num_layers=1,
        sample_width=96,  # latent units: RoPE tables cover up to 768 px
        sample_height=96,
        sample_frames=81,
        patch_size=2,
        patch_size_t=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=False,
        patch_bias=False,
    )
    vae = AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    scheduler = CogVideoXDDIMScheduler(
        prediction_type="v_prediction", timestep_spacing="trailing", rescale_betas_zero_snr=True
    )
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=build_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )
    pipe.save_pretrained(str(directory))
