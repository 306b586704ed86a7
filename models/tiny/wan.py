"""Tiny Wan 2.1 I2V checkpoints and LoRAs (diffusers/PEFT and ComfyUI/kohya key formats)."""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.tokenizer import build_tokenizer, tiny_t5_config


def build_wan_i2v(directory: Path, seed: int = 0) -> None:
    """Wan 2.1 I2V: UMT5 text encoder, CLIP vision encoder, Wan VAE and a 2-layer transformer."""
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    heads, head_dim, text_dim, image_dim = 2, 12, 32, 4
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    text_encoder = UMT5EncoderModel(tiny_t5_config(UMT5Config, text_dim))
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=heads,
        attention_head_dim=head_dim,
        in_channels=36,
        out_channels=16,
        text_dim=text_dim,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # the real models' value: long clips and large sides fit
        image_dim=image_dim,
        added_kv_proj_dim=heads * head_dim,
    )
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=image_dim,
            projection_dim=image_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=build_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    pipe.save_pretrained(str(directory))


_WAN_ATTENTION_TARGETS = {
    # (kohya/ComfyUI module, diffusers module)
    ("self_attn.q", "attn1.to_q"),
    ("self_attn.k", "attn1.to_k"),
    ("self_attn.v", "attn1.to_v"),
    ("self_attn.o", "attn1.to_out.0"),
    ("cross_attn.q", "attn2.to_q"),
    ("cross_attn.k", "attn2.to_k"),
    ("cross_attn.v", "attn2.to_v"),
    ("cross_attn.o", "attn2.to_out.0"),
    ("cross_attn.k_img", "attn2.add_k_proj"),
    ("cross_attn.v_img", "attn2.add_v_proj"),
}


def write_tiny_wan_lora(
    path: Path, *, seed: int, style: str = "diffusers", rank: int = 4, num_layers: int = 2, dim: int = 24
) -> None:
    """A random LoRA for the tiny Wan transformer.

    style="diffusers": PEFT keys (`transformer.blocks.N.attn1.to_q.lora_A.weight`), as diffusers saves them;
    style="kohya": ComfyUI/kohya keys (`diffusion_model.blocks.N.self_attn.q.lora_down.weight` + `alpha`),
    as most community Wan LoRAs are published.
    """
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for block in range(num_layers):
        for kohya_name, diffusers_name in sorted(_WAN_ATTENTION_TARGETS):
            down = torch.randn(rank, dim, generator=generator) * 0.5
            up = torch.randn(dim, rank, generator=generator) * 0.5
            if style == "kohya":
                prefix = f"diffusion_model.blocks.{block}.{kohya_name}"
                tensors[f"{prefix}.lora_down.weight"] = down
                tensors[f"{prefix}.lora_up.weight"] = up
                tensors[f"{prefix}.alpha"] = torch.tensor(float(rank))
            elif style == "diffusers":
                prefix = f"transformer.blocks.{block}.{diffusers_name}"
                tensors[f"{prefix}.lora_A.weight"] = down
                tensors[f"{prefix}.lora_B.weight"] = up
            else:
                raise ValueError(f"unknown LoRA style {style!r}; expected 'diffusers' or 'kohya'")
    save_file(tensors, str(path))
