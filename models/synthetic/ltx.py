"""LTX-Video 2B 0.9.0 and 0.9.1, as diffusers ships them (Lightricks/LTX-Video, diffusers format).

Transformer: `LTXVideoTransformer3DModel()` with its defaults, which huggingface/diffusers
scripts/convert_ltx_to_diffusers.py uses for every 2B checkpoint (spelled out below). VAE: the script's
`get_vae_config("0.9.0")` (a plain decoder) or the 0.9.1 VAE (decoder with timestep conditioning, noise injection
and residual 2x upsampling) as published in the 0.9.1 diffusers vae/config.json (jbilcke-hf/LTX-Video-0.9.1-HFIE,
the Lightricks 0.9.1 weights converted by that script). Text encoder: the T5 v1.1 XXL encoder with a 128-token
tokenizer; scheduler: the script's flow-match Euler with dynamic shifting (the same for both versions).

The 0.9.1 decoder adds noise drawn from torch's global generator (diffusers passes it no generator), so its frames
are not a function of the job's seed alone: one job run twice gives other frames, and jobs batched together decode
with noise they share. The tests therefore run LTX on 0.9.0, whose frames the seed fixes.
"""

from __future__ import annotations

from typing import Any

from models.synthetic.encoders import NARROW_TEXT_DIM, NARROW_VOCAB_SIZE, T5_V1_1_XXL, narrow_t5, t5_encoder
from models.synthetic.recipe import Recipe, Scale
from models.synthetic.tokenizer import build_tokenizer

LTX_TRANSFORMER_2B: dict[str, Any] = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "num_layers": 28,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 4096,
    "attention_bias": True,
    "attention_out_bias": True,
}

LTX_VAE_090: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": [128, 256, 512, 512],
    "decoder_block_out_channels": [128, 256, 512, 512],
    "layers_per_block": [4, 3, 3, 3, 4],
    "decoder_layers_per_block": [4, 3, 3, 3, 4],
    "spatio_temporal_scaling": [True, True, True, False],
    "decoder_spatio_temporal_scaling": [True, True, True, False],
    "decoder_inject_noise": [False, False, False, False, False],
    "downsample_type": ["conv", "conv", "conv", "conv"],
    "upsample_residual": [False, False, False, False],
    "upsample_factor": [1, 1, 1, 1],
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
}

LTX_VAE_091: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": [128, 256, 512, 512],
    "decoder_block_out_channels": [256, 512, 1024],
    "layers_per_block": [4, 3, 3, 3, 4],
    "decoder_layers_per_block": [5, 6, 7, 8],
    "spatio_temporal_scaling": [True, True, True, False],
    "decoder_spatio_temporal_scaling": [True, True, True],
    "decoder_inject_noise": [True, True, True, False],
    "upsample_residual": [True, True, True],
    "upsample_factor": [2, 2, 2],
    "timestep_conditioning": True,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
}

LTX_TOKENIZER_MAX_LENGTH = 128  # convert_ltx_to_diffusers.py TOKENIZER_MAX_LENGTH

_NARROW_LATENT_CHANNELS = 8
_NARROW_TRANSFORMER: dict[str, Any] = {
    **LTX_TRANSFORMER_2B,
    "in_channels": _NARROW_LATENT_CHANNELS,
    "out_channels": _NARROW_LATENT_CHANNELS,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "cross_attention_dim": 32,  # = heads x head dim, as 2048 = 32 x 64 in the full model
    "num_layers": 2,
    "caption_channels": NARROW_TEXT_DIM,
}


def _narrow_vae(full: dict[str, Any]) -> dict[str, Any]:
    narrow = {
        **full,
        "latent_channels": _NARROW_LATENT_CHANNELS,
        "block_out_channels": [8, 16, 32, 32],
        "layers_per_block": [1, 1, 1, 1, 1],
    }
    decoder_blocks = len(full["decoder_block_out_channels"])  # 4 in 0.9.0; 3 (with 2x residual upsampling) in 0.9.1
    narrow["decoder_block_out_channels"] = [8, 16, 32, 32] if decoder_blocks == 4 else [16, 32, 64]
    narrow["decoder_layers_per_block"] = [1] * len(full["decoder_layers_per_block"])
    return narrow


def _scheduler() -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )


def _transformer(config: dict[str, Any]) -> Any:
    from diffusers import LTXVideoTransformer3DModel

    return LTXVideoTransformer3DModel(**config)


def _vae(config: dict[str, Any]) -> Any:
    from diffusers import AutoencoderKLLTXVideo

    return AutoencoderKLLTXVideo(**config)


def _recipe(scale: Scale, vae: dict[str, Any]) -> Recipe:
    full = scale == "full"
    text = T5_V1_1_XXL if full else narrow_t5(T5_V1_1_XXL)
    vocab = T5_V1_1_XXL["vocab_size"] if full else NARROW_VOCAB_SIZE
    transformer = LTX_TRANSFORMER_2B if full else _NARROW_TRANSFORMER
    vae = vae if full else _narrow_vae(vae)
    return Recipe(
        modules={
            "text_encoder": lambda: t5_encoder(text),
            "vae": lambda: _vae(vae),
            "transformer": lambda: _transformer(transformer),
        },
        others={"tokenizer": lambda: build_tokenizer(vocab, LTX_TOKENIZER_MAX_LENGTH), "scheduler": _scheduler},
    )


def ltx_video_2b_090(scale: Scale) -> Recipe:
    """LTX-Video 2B 0.9.0: T5-XXL encoder, LTX VAE (32x space, 8x time, plain decoder), 28-layer transformer."""
    return _recipe(scale, LTX_VAE_090)


def ltx_video_2b(scale: Scale) -> Recipe:
    """LTX-Video 2B 0.9.1: as 0.9.0 with the timestep-conditioned, noise-injecting 0.9.1 decoder."""
    return _recipe(scale, LTX_VAE_091)
