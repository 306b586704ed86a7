"""Random LoRAs for a synthetic model's transformer, where no trained LoRA exists: what the tests, the demo and
the LoRA measurements (scripts/gpu/lora_swap.py, the GPU tests) load, hotswap and time.

Two key formats, as published LoRAs come:
- "diffusers": PEFT keys as diffusers saves them (`transformer.blocks.N.attn1.to_q.lora_A.weight`), for any
  transformer;
- "kohya": ComfyUI/kohya keys with an `alpha` per layer (`diffusion_model.blocks.N.self_attn.q.lora_down.weight`),
  as most community Wan 2.1 and Wan 2.2 LoRAs are published; written for Wan transformers only (the names are
  those of the original Wan code, which diffusers converts back when it loads the file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

LoraFormat = Literal["diffusers", "kohya"]
LORA_FORMATS: tuple[LoraFormat, ...] = ("diffusers", "kohya")

# The attention projections of the repeated blocks (Wan, LTX-Video, CogVideoX name them alike, and Wan 2.1 I2V adds
# the image keys and values of its cross-attention): what published style and distillation LoRAs target at least.
ATTENTION_TARGETS = re.compile(
    r"^(blocks|transformer_blocks)\.\d+\.attn\d?\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)$"
)

# diffusers' Wan attention names -> the original Wan names kohya/ComfyUI LoRAs use.
_WAN_ORIGINAL_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.add_k_proj": "cross_attn.k_img",
    "attn2.add_v_proj": "cross_attn.v_img",
}
_WAN_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")

# The std of lora_B: with lora_A at std 1/sqrt(in), a LoRA of rank r changes a layer's output by about
# strength x sqrt(r) of its size. The default changes a model's output without swamping it; tests ask for more.
DEFAULT_STRENGTH = 0.01


def _kohya_prefix(name: str) -> str:
    match = _WAN_BLOCK.match(name)
    if match is None or match.group(2) not in _WAN_ORIGINAL_NAMES:
        raise ValueError(f"layer {name!r} has no kohya name: kohya keys are written for Wan transformers only")
    return f"diffusion_model.blocks.{match.group(1)}.{_WAN_ORIGINAL_NAMES[match.group(2)]}"


def synthetic_lora(
    transformer: Any,
    *,
    rank: int,
    seed: int,
    lora_format: LoraFormat = "diffusers",
    strength: float = DEFAULT_STRENGTH,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """A seeded state dict with a down (rank x in) and an up (out x rank) matrix for every attention projection
    of the blocks, in `dtype` (default: the transformer's). The transformer may be a meta skeleton: only its
    layers' names and shapes are read."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    dtype = dtype or next(transformer.parameters()).dtype
    tensors: dict[str, Any] = {}
    for name, module in transformer.named_modules():
        if not (isinstance(module, torch.nn.Linear) and ATTENTION_TARGETS.match(name)):
            continue
        down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
        up = torch.randn(module.out_features, rank, generator=generator) * strength
        if lora_format == "kohya":
            prefix = _kohya_prefix(name)
            tensors[f"{prefix}.lora_down.weight"] = down.to(dtype)
            tensors[f"{prefix}.lora_up.weight"] = up.to(dtype)
            tensors[f"{prefix}.alpha"] = torch.tensor(float(rank), dtype=dtype)  # alpha / rank = 1, as in PEFT
        else:
            tensors[f"transformer.{name}.lora_A.weight"] = down.to(dtype)
            tensors[f"transformer.{name}.lora_B.weight"] = up.to(dtype)
    if not tensors:
        raise ValueError(f"{type(transformer).__name__} has no layer matching {ATTENTION_TARGETS.pattern}")
    return tensors


def write_synthetic_lora(
    transformer: Any,
    path: Path,
    *,
    rank: int,
    seed: int,
    lora_format: LoraFormat = "diffusers",
    strength: float = DEFAULT_STRENGTH,
    dtype: torch.dtype | None = None,
) -> int:
    """Write `synthetic_lora` as a .safetensors file; returns its size in bytes."""
    from safetensors.torch import save_file

    tensors = synthetic_lora(transformer, rank=rank, seed=seed, lora_format=lora_format, strength=strength, dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path.stat().st_size
