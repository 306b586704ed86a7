"""Building synthetic pipelines (random weights straight onto a device) and counting their parameters."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from models.synthetic.recipe import Recipe, Scale
from models.synthetic.registry import lookup
from pipelines.families import FAMILIES

if TYPE_CHECKING:
    import torch


def component_seed(seed: int, component: str) -> int:
    """A per-component seed, so each component's weights depend on the seed and its name, not on build order."""
    return (seed * 1_000_003 + zlib.crc32(component.encode())) % 2**63


def build_module(recipe: Recipe, component: str, *, device: str, dtype: torch.dtype, seed: int) -> Any:
    """One weighted component: constructed with its weights on meta, then materialized on `device` in `dtype`."""
    import torch

    from models.synthetic.materialize import materialize
    from models.synthetic.skeleton import parameters_on_meta

    with parameters_on_meta(dtype):
        module = recipe.modules[component]()
    materialize(module, device=torch.device(device), dtype=dtype, seed=component_seed(seed, component))
    return module


def pipeline_class(name: str) -> Any:
    """The diffusers pipeline class of the synthetic model's catalog family."""
    import diffusers

    return getattr(diffusers, FAMILIES[lookup(name).family].pipeline_class)


def build_synthetic_pipeline(
    name: str, *, device: str, dtype: torch.dtype, seed: int = 0, scale: Scale = "full"
) -> Any:
    """A ready pipeline of the family's class on `device`: real architecture, seeded random weights in `dtype`.

    No full-precision copy is ever held in host memory: weights are allocated and filled on `device`.
    Raises UnknownSyntheticModel (a ValueError listing the known names) for an unknown name.
    """
    recipe = lookup(name).recipe(scale)
    components: dict[str, Any] = {
        component: build_module(recipe, component, device=device, dtype=dtype, seed=seed)
        for component in recipe.modules
    }
    components.update({component: make() for component, make in recipe.others.items()})
    components.update(dict.fromkeys(recipe.absent))
    return pipeline_class(name)(**components, **recipe.config)


def count_parameters(name: str, scale: Scale = "full") -> dict[str, int]:
    """Parameters per weighted component and in "total", from models built on the meta device (nothing allocated).

    Tied parameters count once, as in the checkpoints' safetensors files.
    """
    from models.synthetic.skeleton import everything_on_meta

    recipe = lookup(name).recipe(scale)
    counts: dict[str, int] = {}
    for component, make in recipe.modules.items():
        with everything_on_meta():
            module = make()
        counts[component] = sum(param.numel() for param in module.parameters())
    counts["total"] = sum(counts.values())
    return counts
