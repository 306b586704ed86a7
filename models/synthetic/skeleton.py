"""Constructing real model classes without allocating their weights.

`parameters_on_meta(dtype)` runs a model's own `__init__` with every parameter redirected, as it is registered,
to the meta device in the target dtype, so no copy of the weights is kept. (A layer's own `torch.empty` still
runs first; its pages are never touched and are freed at once: constructing every full-size model this way
raises peak host memory by well under 1 GB.) Buffers are left alone, so tables computed in `__init__` (rotary
frequencies, sin-cos position tables, position ids) keep their real values on the CPU. The redirection is
process-wide while the block runs: construct nothing else concurrently. `everything_on_meta()` also puts
buffers on meta, for counting only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def _meta_parameter(param: nn.Parameter, dtype: torch.dtype) -> nn.Parameter:
    """The parameter as an empty meta tensor of `dtype`; one already so is returned as it is, which keeps ties
    (re-registering a shared parameter under a second name) intact."""
    target = dtype if param.is_floating_point() else param.dtype
    if param.device.type == "meta" and param.dtype == target:
        return param
    return nn.Parameter(torch.empty(param.shape, dtype=target, device="meta"), requires_grad=False)


@contextmanager
def parameters_on_meta(dtype: torch.dtype) -> Iterator[None]:
    """Within this block every registered parameter becomes an empty meta tensor of `dtype` (floating ones)."""
    original = nn.Module.register_parameter

    def register_parameter(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            param = _meta_parameter(param, dtype)
        original(module, name, param)

    nn.Module.register_parameter = register_parameter  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


@contextmanager
def everything_on_meta(dtype: torch.dtype = torch.bfloat16) -> Iterator[None]:
    """Parameters and buffers on meta: for counting and inspecting shapes, never for running."""
    with torch.device("meta"), parameters_on_meta(dtype):
        yield
