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


class OneJobAtATimeWanPipeline(WanImageToVideoPipeline):
    """A device with memory for one job: its denoiser raises the CUDA out-of-memory error whenever one call
    carries the latents of several jobs (a batch), and runs normally on one job's. (The guard goes in where the
    pipeline registers its transformer: diffusers reads the components from `__init__`'s signature.)"""

    def register_modules(self, **modules: Any) -> None:
        super().register_modules(**modules)
        transformer = modules.get("transformer")
        if transformer is None:
            return
        forward = transformer.forward

        def one_job_at_a_time(hidden_states: torch.Tensor, *rest: Any, **named: Any) -> Any:
            if hidden_states.shape[0] > 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB")
            return forward(hidden_states, *rest, **named)

        transformer.forward = one_job_at_a_time


class FailingCallWanPipeline(WanImageToVideoPipeline):
    """Raises `error` on its first `failures` calls (as a call inside the denoiser would), then generates normally:
    a shape error of the model's arithmetic, or a fault of the device."""

    error: Exception = RuntimeError("The size of tensor a (7) must match the size of tensor b (5) at dimension 1")
    failures = 1
    calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise type(self).error
        return super().__call__(*args, **kwargs)
