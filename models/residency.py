"""Which pooled pipelines sit on the device: the most recently used ones, within a byte budget.

A model pushed out is moved to CPU memory (`pipe.to("cpu")`), never dropped: bringing it back is a copy, not a
disk read, and each model keeps its one pipeline object, so its weights exist once (on the device or in CPU
memory, never both). A model's size is its components' parameter and buffer bytes, measured each time it is
placed, so LoRA adapters loaded since then count too. Activations are not counted: leave headroom for them.

Models with `offload = "model"` or `"group"` move their own weights with diffusers hooks on CUDA: their loads
are counted here, but they are neither moved nor charged to the budget. On the CPU device every move is a no-op,
yet the bookkeeping is the same, so tests exercise it without a GPU.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from models.catalog import Offload
from models.lora_slots import move_scalings
from npc_video_client.clock import Stopwatch

log = logging.getLogger(__name__)
GIB = 1024**3


@dataclass
class ModelStats:
    """Per model: reads from disk, moves back onto the device (swaps), moves out to CPU memory (offloads)."""

    disk_loads: int = 0
    swaps: int = 0
    offloads: int = 0
    weight_bytes: int = 0


def weight_bytes(pipe: Any) -> int:
    """Parameter and buffer bytes of every torch module of a pipeline."""
    import torch

    return sum(
        tensor.numel() * tensor.element_size()
        for component in pipe.components.values()
        if isinstance(component, torch.nn.Module)
        for tensor in itertools.chain(component.parameters(), component.buffers())
    )


def apply_offload(pipe: Any, mode: Offload, device: str, model_name: str) -> bool:
    """Install diffusers' CPU offload hooks (CUDA only); True when the hooks now decide where weights live."""
    import torch

    if mode == "none":
        return False
    if torch.device(device).type != "cuda":
        log.warning(
            "model %s: offload=%r ignored on %s (it needs CUDA): kept like any other model", model_name, mode, device
        )
        return False
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=True,
        )
    log.info("model %s: %s CPU offload onto %s", model_name, mode, device)
    return True


def _synchronize(device: str) -> None:
    """Wait for copies to the device to finish, so the measured time is the real one."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Residency:
    """The device's least-recently-used set of movable pipelines, and every model's counts."""

    def __init__(self, device: str, budget: int | None) -> None:
        self.device = device
        self.budget = budget
        self.stats: dict[str, ModelStats] = {}
        self._movable: dict[str, Any] = {}
        self._on_device: OrderedDict[str, None] = OrderedDict()  # least recently used first

    @property
    def on_device(self) -> list[str]:
        """Names of the models on the device, least recently used first."""
        return list(self._on_device)

    def needs_no_move(self, name: str) -> bool:
        """On the device, or managing its own placement (offload modes): running it now moves nothing."""
        return name in self._on_device or name not in self._movable

    def add(self, name: str, pipe: Any, self_managed: bool) -> None:
        """Track a pipeline just read from disk (in CPU memory) and place it (the load's time includes this)."""
        self.stats[name] = ModelStats(disk_loads=1, weight_bytes=weight_bytes(pipe))
        if not self_managed:
            self._movable[name] = pipe
            self._place(name)

    def ensure_on_device(self, name: str) -> float:
        """0.0 when the model is there already (it becomes the most recently used), else the ms of the swap."""
        if name in self._on_device:
            self._on_device.move_to_end(name)
            return 0.0
        if name not in self._movable:  # offload hooks move it
            return 0.0
        self.stats[name].swaps += 1
        return self._place(name)

    def _place(self, name: str) -> float:
        clock = Stopwatch()
        pipe = self._movable[name]
        size = weight_bytes(pipe)
        self.stats[name].weight_bytes = size
        self._make_room(name, size)
        pipe.to(self.device)
        move_scalings(pipe, self.device)  # LoRA hotswap scalings are not moved by pipe.to()
        _synchronize(self.device)
        self._on_device[name] = None
        return clock.ms()

    def _make_room(self, name: str, size: int) -> None:
        if self.budget is None:
            return
        sizes = {resident: self.stats[resident].weight_bytes for resident in self._on_device}  # as last placed
        used = sum(sizes.values())
        for resident in list(self._on_device):
            if used + size <= self.budget:
                break
            self._offload(resident, making_room_for=name)
            used -= sizes[resident]
        if size > self.budget:
            log.warning(
                "model %s (%.2f GiB of weights) is larger than the device memory budget (%.2f GiB) on its own; "
                'it is placed anyway: raise NPC_WORKER_DEVICE_MEMORY_BUDGET or give it offload = "model" or '
                '"group" in the catalog',
                name,
                size / GIB,
                self.budget / GIB,
            )

    def _offload(self, name: str, making_room_for: str) -> None:
        self._movable[name].to("cpu")
        move_scalings(self._movable[name], "cpu")
        del self._on_device[name]
        self.stats[name].offloads += 1
        log.info("moved model %s to CPU memory to make room for %s", name, making_room_for)
