"""Writing a synthetic model as a diffusers-format directory, one component at a time.

The directory loads with the family pipeline's `from_pretrained`, like a downloaded checkpoint, for measuring
cold starts from disk. Each weighted component is built on the device, saved (safetensors shards of at most
`MAX_SHARD_SIZE`, the conversion scripts' size) and freed before the next, so host memory never holds more
than one component: the 14B transformer in bfloat16 is about 33 GB, so build it on a GPU and save from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.synthetic.build import build_module, pipeline_class
from models.synthetic.lora import DEFAULT_STRENGTH, LoraFormat, write_synthetic_lora
from models.synthetic.recipe import Scale
from models.synthetic.registry import lookup

if TYPE_CHECKING:
    import torch

MAX_SHARD_SIZE = "5GB"


def write_synthetic_model(
    directory: Path, name: str, *, dtype: torch.dtype, device: str, seed: int = 0, scale: Scale = "full"
) -> list[str]:
    """Write every component under `directory` and model_index.json last; returns the component names written.

    The weights are those `build_synthetic_pipeline(name, device=..., dtype=..., seed=seed, scale=scale)` gives.
    """
    import torch

    recipe = lookup(name).recipe(scale)
    directory.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Any] = {}
    for component in recipe.modules:
        module = build_module(recipe, component, device=device, dtype=dtype, seed=seed)
        module.save_pretrained(str(directory / component), safe_serialization=True, max_shard_size=MAX_SHARD_SIZE)
        saved[component] = module.to("meta")  # its weights freed; its class and config kept for model_index.json
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    others = {component: make() for component, make in recipe.others.items()}
    for component, value in others.items():
        value.save_pretrained(str(directory / component))
    # model_index.json as the pipeline itself writes it, from a pipeline of the saved modules (now weightless)
    pipe = pipeline_class(name)(**saved, **others, **dict.fromkeys(recipe.absent), **recipe.config)
    pipe.save_config(str(directory))
    return [*recipe.modules, *others]


def write_synthetic_model_lora(
    path: Path,
    name: str,
    *,
    dtype: torch.dtype,
    seed: int,
    scale: Scale = "full",
    rank: int = 4,
    lora_format: LoraFormat = "diffusers",
    strength: float = DEFAULT_STRENGTH,
) -> int:
    """A random LoRA that fits the synthetic model's transformer (each expert of a two-expert model: they share one
    architecture), written from a meta skeleton: no weights are built. Returns the file's size in bytes."""
    from models.synthetic.skeleton import everything_on_meta

    model = lookup(name)
    recipe = model.recipe(scale)
    if "transformer" not in recipe.modules:
        raise ValueError(f"synthetic model {name!r} has no transformer to write a LoRA for (family {model.family!r})")
    with everything_on_meta(dtype):
        transformer = recipe.modules["transformer"]()
    return write_synthetic_lora(
        transformer, path, rank=rank, seed=seed, lora_format=lora_format, strength=strength, dtype=dtype
    )
