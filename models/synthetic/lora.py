"""Random LoRAs for any transformer, in the diffusers/PEFT key format: what measures LoRA loading, hotswapping and
LoRA layers' cost on a synthetic model (scripts/gpu/lora_swap.py, the GPU tests), where no trained LoRA exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# The attention projections of the repeated blocks (Wan, LTX-Video, CogVideoX name them alike): what published
# style and distillation LoRAs for these models target at least.
ATTENTION_TARGETS = re.compile(r"^(blocks|transformer_blocks)\.\d+\.attn\d?\.(to_q|to_k|to_v|to_out\.0)$")


def synthetic_lora(transformer: Any, *, rank: int, seed: int, prefix: str = "transformer") -> dict[str, Any]:
    """A state dict with lora_A (rank x in) and lora_B (out x rank) for every attention projection of the blocks,
    seeded, in the transformer's dtype, small enough that the LoRA changes the output without swamping it."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    dtype = next(transformer.parameters()).dtype
    tensors: dict[str, Any] = {}
    for name, module in transformer.named_modules():
        if not (isinstance(module, torch.nn.Linear) and ATTENTION_TARGETS.match(name)):
            continue
        down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
        up = torch.randn(module.out_features, rank, generator=generator) * 0.01
        tensors[f"{prefix}.{name}.lora_A.weight"] = down.to(dtype)
        tensors[f"{prefix}.{name}.lora_B.weight"] = up.to(dtype)
    if not tensors:
        raise ValueError(f"{type(transformer).__name__} has no layer matching {ATTENTION_TARGETS.pattern}")
    return tensors


def write_synthetic_lora(transformer: Any, path: Path, *, rank: int, seed: int) -> int:
    """Write `synthetic_lora` as a .safetensors file; returns its size in bytes."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(synthetic_lora(transformer, rank=rank, seed=seed), str(path))
    return path.stat().st_size
