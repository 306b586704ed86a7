"""Misbehaving pipelines (failure-mode fixtures): real diffusers classes that fail the way devices do."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import WanImageToVideoPipeline


class OutOfMemoryWanPipeline(WanImageToVideoPipeline):
    """Raises the CUDA out-of-memory error on its first `failures` calls, then generates normally."""

    failures = 1
    calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().__call__(*args, **kwargs)
