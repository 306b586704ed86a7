"""Giving a meta-device skeleton real weights: allocated on the target device in the target dtype and filled there.

Each parameter is allocated where it will live and filled in place by a seeded generator on that device, so a
14B transformer never passes through host memory and takes seconds on a GPU. The values are random but of a
sane scale, so activations stay finite in bfloat16 through a whole pipeline call:

- weights of linear and convolution layers (any weight with two or more dimensions): normal, std 1/sqrt(fan_in),
  which keeps a layer's output at the scale of its input;
- weights (scales) of normalisation layers: ones; biases: zeros;
- embeddings: standard normal (what the following normalisation expects);
- anything else (modulation tables, class tokens, scalars): normal, std 1/sqrt(last dimension).

Dtypes follow what `from_pretrained` does with the real checkpoint: parameters in the target dtype except those
the model class pins to float32 (`_keep_in_fp32_modules`: diffusers always, transformers for float16 only, and
`_keep_in_fp32_modules_strict` for float16 and bfloat16). Buffers keep the values `__init__` computed; floating
persistent ones (saved in checkpoints, so loaded in the target dtype) are cast, non-persistent ones keep theirs.
Tied parameters (T5's shared embedding) stay tied.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_NORM_SCALE_NAMES = frozenset({"weight", "gamma", "scale"})


def _fp32_module_names(model: nn.Module, dtype: torch.dtype) -> frozenset[str]:
    """Module names whose parameters `from_pretrained` keeps in float32 for this dtype."""
    names: set[str] = set()
    is_transformers = type(model).__module__.startswith("transformers.")
    keep = list(getattr(model, "_keep_in_fp32_modules", None) or [])
    if not is_transformers or dtype == torch.float16:
        names.update(keep)
    if is_transformers and dtype in (torch.float16, torch.bfloat16):
        names.update(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    return frozenset(names) if dtype != torch.float32 else frozenset()


def parameter_dtype(model: nn.Module, name: str, param: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    """The dtype `from_pretrained(..., dtype=dtype)` gives this parameter of `model`."""
    if not param.is_floating_point():
        return param.dtype
    if any(part in _fp32_module_names(model, dtype) for part in name.split(".")):
        return torch.float32
    return dtype


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.RMSNorm) or "norm" in type(module).__name__.lower()


def fill_(tensor: torch.Tensor, owner: nn.Module, leaf: str, generator: torch.Generator) -> None:
    """Fill one parameter in place by the rules of this module's docstring."""
    if leaf.endswith("bias"):
        tensor.zero_()
    elif _is_norm(owner) and leaf in _NORM_SCALE_NAMES and tensor.numel() == tensor.shape[0]:
        tensor.fill_(1.0)
    elif isinstance(owner, nn.Embedding):
        tensor.normal_(0.0, 1.0, generator=generator)
    elif tensor.dim() >= 2 and leaf == "weight":
        fan_in = math.prod(tensor.shape[1:])
        tensor.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=generator)
    else:
        last = tensor.shape[-1] if tensor.dim() else 1
        tensor.normal_(0.0, 1.0 / math.sqrt(last), generator=generator)


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (model.get_submodule(path) if path else model), leaf


@torch.no_grad()
def materialize(model: nn.Module, *, device: torch.device, dtype: torch.dtype, seed: int) -> None:
    """Replace every meta parameter of `model` by a filled one on `device`, and move its buffers there."""
    generator = torch.Generator(device=device).manual_seed(seed)
    made: dict[int, nn.Parameter] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        owner, leaf = _owner(model, name)
        replacement = made.get(id(param))
        if replacement is None:
            tensor = torch.empty(param.shape, dtype=parameter_dtype(model, name, param, dtype), device=device)
            fill_(tensor, owner, leaf, generator)
            replacement = nn.Parameter(tensor, requires_grad=False)
            made[id(param)] = replacement
        owner._parameters[leaf] = replacement
    for name, buffer in model.named_buffers(remove_duplicate=False):
        if buffer.device.type == "meta":
            raise ValueError(
                f"buffer {name!r} of {type(model).__name__} has no values (it was built on the meta device); "
                "construct the model under parameters_on_meta(), which keeps buffers real"
            )
        owner, leaf = _owner(model, name)
        persistent = leaf not in owner._non_persistent_buffers_set
        target = parameter_dtype(model, name, buffer, dtype) if persistent else buffer.dtype
        owner._buffers[leaf] = buffer.to(device=device, dtype=target)
    model.eval()
