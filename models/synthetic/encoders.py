"""The conditioning encoders the families share: umT5-XXL, the T5 v1.1 XXL encoder and open-clip ViT-H/14.

Full configs are the published config.json files of the checkpoints' subfolders; narrow ones keep the classes
and the code path with tiny widths and depths (and a small vocabulary), small enough that the CPU test suite runs a
job in well under a second.
"""

from __future__ import annotations

from typing import Any

# text_encoder/config.json of Wan-AI/Wan2.1-I2V-14B-480P-Diffusers (and every Wan diffusers checkpoint):
# the encoder of google/umt5-xxl, vocabulary 256384.
UMT5_XXL: dict[str, Any] = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "gated-gelu",
    "scalable_attention": True,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

# text_encoder/config.json of Lightricks/LTX-Video and THUDM/CogVideoX-5b-I2V: the encoder of
# google/t5-v1_1-xxl (the conversion scripts convert_ltx_to_diffusers.py / convert_cogvideox_to_diffusers.py load
# it as T5EncoderModel), vocabulary 32128.
T5_V1_1_XXL: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

NARROW_VOCAB_SIZE = 256
NARROW_TEXT_DIM = 32


def narrow_t5(full: dict[str, Any]) -> dict[str, Any]:
    """The same encoder class and code path in one narrow layer: it encodes 512 padded tokens per prompt."""
    return {
        **full,
        "vocab_size": NARROW_VOCAB_SIZE,
        "d_model": NARROW_TEXT_DIM,
        "d_kv": 8,
        "d_ff": 32,
        "num_layers": 1,
        "num_decoder_layers": 1,
        "num_heads": 2,
        "relative_attention_num_buckets": 8,
    }


# image_encoder/config.json of Wan-AI/Wan2.1-I2V-14B-480P-Diffusers (CLIPVisionModel) and of
# stabilityai/stable-video-diffusion-img2vid-xt (CLIPVisionModelWithProjection): open-clip ViT-H/14
# (laion/CLIP-ViT-H-14-laion2B-s32B-b79K, the model convert_wan_to_diffusers.py loads).
VIT_H_14: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 16,
    "num_hidden_layers": 32,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 1024,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "num_channels": 3,
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
}


def narrow_vit(hidden_size: int, projection_dim: int) -> dict[str, Any]:
    """Same image geometry (224 px, 14 px patches: what the image processor produces), tiny width and depth."""
    return {
        **VIT_H_14,
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "projection_dim": projection_dim,
    }


# image_processor/preprocessor_config.json (Wan 2.1 I2V) and feature_extractor/preprocessor_config.json (SVD):
# the CLIP preprocessing of open-clip ViT-H/14.
CLIP_IMAGE_PROCESSOR: dict[str, Any] = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": {"shortest_edge": 224},
}


def umt5_encoder(config: dict[str, Any]) -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(UMT5Config(**config))


def t5_encoder(config: dict[str, Any]) -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**config))


def clip_vision(config: dict[str, Any], *, with_projection: bool) -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

    model_class = CLIPVisionModelWithProjection if with_projection else CLIPVisionModel
    return model_class(CLIPVisionConfig(**config))


def clip_image_processor() -> Any:
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**CLIP_IMAGE_PROCESSOR)
