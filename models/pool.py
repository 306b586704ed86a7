"""Loaded pipelines by catalog model name: each read from disk once per process and kept for good.

Where a kept pipeline's weights are (device or CPU memory) is models.residency's business; `acquire` brings
the model onto the device and says what that cost the job: a disk load, a swap back from CPU memory, or nothing.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from npc_video_client.clock import Stopwatch
from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError

from models.catalog import Catalog
from models.loras import AdapterCache
from models.residency import ModelStats, Residency, apply_offload
from models.speed import apply_speed
from pipelines.families import FAMILIES
from pipelines.family import Family

log = logging.getLogger(__name__)


def _pipeline_class(name: str, diffusers: Any) -> Any:
    """A diffusers class name, or `package.module:Class` for a pipeline class of one's own."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
    return getattr(diffusers, name)


@dataclass
class LoadedModel:
    name: str
    family: Family
    pipe: Any
    adapters: AdapterCache
    load_ms: float


@dataclass(frozen=True)
class Acquired:
    """A pooled model on the device, and the ms this took: read from disk (load) or moved back (swap)."""

    model: LoadedModel
    load_ms: float = 0.0
    swap_ms: float = 0.0


@dataclass
class ModelPool:
    catalog: Catalog
    device: str
    lora_cache_size: int = 8
    device_memory_budget: int | None = None
    _loaded: dict[str, LoadedModel] = field(default_factory=dict)
    residency: Residency = field(init=False)

    def __post_init__(self) -> None:
        self.residency = Residency(self.device, self.device_memory_budget)

    def acquire(self, name: str) -> Acquired:
        loaded = self._loaded.get(name)
        if loaded is None:
            loaded = self._load(name)
            self._loaded[name] = loaded
            return Acquired(loaded, load_ms=loaded.load_ms)
        return Acquired(loaded, swap_ms=self.residency.ensure_on_device(name))

    def get(self, name: str) -> LoadedModel:
        """The model on the device, when what it cost does not matter (warm-up, tests)."""
        return self.acquire(name).model

    def is_loaded(self, name: str) -> bool:
        """Read from disk and kept, on the device or in CPU memory."""
        return name in self._loaded

    def is_ready(self, name: str) -> bool:
        """Loaded and needing no load or swap to run now (what job affinity prefers)."""
        return name in self._loaded and self.residency.needs_no_move(name)

    @property
    def disk_loads(self) -> int:
        """Models read from disk by this pool, all models together."""
        return sum(stats.disk_loads for stats in self.residency.stats.values())

    def stats(self, name: str) -> ModelStats:
        return self.residency.stats[name]

    def _load(self, name: str) -> LoadedModel:
        import diffusers
        import torch
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

        entry = self.catalog.models.get(name)
        if entry is None:
            raise JobError(ErrorCode.UNKNOWN_MODEL, f"model {name!r} is not in the catalog")
        family = FAMILIES[entry.family]
        pipeline_class = _pipeline_class(family.pipeline_class, diffusers)
        clock = Stopwatch()
        pipe = pipeline_class.from_pretrained(entry.path, dtype=getattr(torch, entry.dtype), local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        apply_speed(pipe, entry.speed, self.device, name)
        self_managed = apply_offload(pipe, entry.offload, self.device, name)
        self.residency.add(name, pipe, self_managed)
        load_ms = clock.ms()
        log.info("loaded model %s (%s) from %s onto %s in %.0f ms", name, family.name, entry.path, self.device, load_ms)
        return LoadedModel(name, family, pipe, AdapterCache(pipe, name, self.lora_cache_size, family), load_ms)
