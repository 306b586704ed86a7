"""A tiny Stable Video Diffusion checkpoint (image-only conditioning: no text encoder, no tokenizer).

SVD's pipeline resizes a PIL start frame to 224 px for its CLIP image encoder, so the tiny encoder keeps
image_size 224 (with 32-pixel patches: 49 tokens) and jobs pass the same PIL image as in production.
The VAE downsamples 8x like the real one.
"""

from __future__ import annotations

from pathlib import Path

import torch


def build_svd(directory: Path, seed: int = 0) -> None:
    """SVD: CLIP vision encoder with projection, temporal-decoder VAE and a 2-block spatio-temporal UNet."""
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    embed_dim, time_embed_dim = 32, 32
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=8,  # noise latents + start-frame latents
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=embed_dim,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=3 * time_embed_dim,  # (fps, motion bucket, noise aug) ids
        addition_time_embed_dim=time_embed_dim,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 32, 32, 32],
        down_block_types=["DownEncoderBlock2D"] * 4,
        latent_channels=4,
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=embed_dim,
            projection_dim=embed_dim,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.save_pretrained(str(directory))
