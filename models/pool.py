"""Loaded pipelines by catalog model name: each read from disk once per process and kept for good.

Where a kept pipeline's weights are (device or CPU memory) is models.residency's business; `acquire` brings
the model onto the device and says what that cost the job: a disk load, a swap back from CPU memory, or nothing.
"""

from __future__ import annotations

import gc
import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from models import parallel
from models.catalog import Catalog, ModelEntry
from models.identity import model_identity
from models.lora_slots import LoraSlots
from models.loras import LoraAdapters, NamedAdapters
from models.parallel import ParallelPlan
from models.residency import ModelStats, Residency, apply_offload
from models.speed import apply_speed
from npc_video_client.clock import Stopwatch
from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
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
    adapters: LoraAdapters
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
    group_size: int = 1  # a worker group's: each model's denoiser is split over its members (models.parallel)
    _loaded: dict[str, LoadedModel] = field(default_factory=dict)
    _identities: dict[str, str] = field(default_factory=dict)  # taken when a model is loaded: what it runs with
    residency: Residency = field(init=False)
    # time.monotonic() when the disk load in progress began, else None: read by /healthz from another thread, since
    # the worker loop cannot beat while a checkpoint is read (minutes for a cold 14B model)
    loading_since: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.residency = Residency(self.device, self.device_memory_budget)

    def acquire(self, name: str) -> Acquired:
        loaded = self._loaded.get(name)
        if loaded is None:
            identity = self.identity(name)  # taken before the files are read: what this load runs with
            self.loading_since = time.monotonic()
            try:
                loaded = self._load(name)
            finally:
                self.loading_since = None
            self._loaded[name] = loaded
            self._identities[name] = identity
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

    def identity(self, name: str) -> str:
        """What the model's videos depend on (models.identity): as loaded, or as it would load now."""
        known = self._identities.get(name)
        if known is not None:
            return known
        entry = self.catalog.models.get(name)
        if entry is None:
            raise JobError(ErrorCode.UNKNOWN_MODEL, f"model {quote(name)} is not in the catalog")
        return model_identity(entry)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per loaded model: disk loads, swaps, offloads, LoRA adapter loads and evictions (for /metrics)."""
        counts: dict[str, dict[str, int]] = {}
        for name, stats in self.residency.stats.items():
            loaded = self._loaded.get(name)
            counts[name] = {
                "disk_loads": stats.disk_loads,
                "swaps": stats.swaps,
                "offloads": stats.offloads,
                "lora_loads": loaded.adapters.disk_loads if loaded else 0,
                "lora_evictions": loaded.adapters.evictions if loaded else 0,
            }
        return counts

    def device_memory(self, kind: str) -> float:
        """Bytes of CUDA memory: allocated, reserved, total or peak (allocated); 0 on other devices."""
        import torch

        if torch.device(self.device).type != "cuda" or not torch.cuda.is_available():
            return 0.0
        readers = {
            "allocated": torch.cuda.memory_allocated,
            "reserved": torch.cuda.memory_reserved,
            "peak": torch.cuda.max_memory_allocated,
            "total": lambda device: torch.cuda.get_device_properties(device).total_memory,
        }
        return float(readers[kind](self.device))

    def _load(self, name: str) -> LoadedModel:
        import diffusers
        import torch
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

        entry = self.catalog.models.get(name)
        if entry is None:
            raise JobError(ErrorCode.UNKNOWN_MODEL, f"model {quote(name)} is not in the catalog")
        family = FAMILIES[entry.family]
        pipeline_class = _pipeline_class(family.pipeline_class, diffusers)
        clock = Stopwatch()
        if entry.synthetic is None:
            pipe = pipeline_class.from_pretrained(entry.path, dtype=getattr(torch, entry.dtype), local_files_only=True)
        else:
            pipe = self._build_synthetic(name, entry.synthetic, entry)
        pipe.set_progress_bar_config(disable=True)
        apply_speed(pipe, entry.speed, self.device, name)
        if self.group_size > 1:  # after the attention backend (speed), which the split checks
            parallel.apply(pipe, ParallelPlan.parse(entry.parallel, self.group_size), name, self.device)
        self_managed = apply_offload(pipe, entry.offload, self.device, name)
        self.residency.add(name, pipe, self_managed)
        load_ms = clock.ms()
        log.info("loaded model %s (%s) from %s onto %s in %.0f ms", name, family.name, entry.path, self.device, load_ms)
        # hotswap slots where the catalog asks for them (a compiled denoiser needs them), named adapters otherwise
        adapters: LoraAdapters = (
            LoraSlots(pipe, name, family, entry.speed.lora_slots, entry.speed.lora_rank)
            if entry.speed.lora_slots
            else NamedAdapters(pipe, name, family, self.lora_cache_size)
        )
        return LoadedModel(name, family, pipe, adapters, load_ms)

    def _build_synthetic(self, name: str, synthetic: str, entry: ModelEntry) -> Any:
        """A synthetic model built on the device, where its weights are filled in seconds (on the CPU a 14B model
        takes minutes). Offloaded models (`offload` on CUDA) then move to CPU memory, where a disk load would
        leave them and where the offload hooks expect them; one that does not fit on the device to build is
        built in CPU memory instead (slowly, with a warning)."""
        import torch

        from models.synthetic import build_synthetic_pipeline

        scale = entry.synthetic_scale or "full"
        dtype = getattr(torch, entry.dtype)
        offloaded = entry.offload != "none" and torch.device(self.device).type == "cuda"
        try:
            return self._synthetic_on_device(name, synthetic, entry, dtype, offloaded)
        except torch.OutOfMemoryError:
            if not offloaded:
                raise
        # outside the except block: its traceback no longer holds the partly built components
        gc.collect()
        torch.cuda.empty_cache()
        log.warning(
            "model %s: synthetic %s does not fit on %s to be built; building it in CPU memory (minutes for "
            "billions of parameters)",
            name,
            synthetic,
            self.device,
        )
        return build_synthetic_pipeline(synthetic, device="cpu", dtype=dtype, scale=scale)

    def _synthetic_on_device(self, name: str, synthetic: str, entry: ModelEntry, dtype: Any, offloaded: bool) -> Any:
        import torch

        from models.synthetic import build_synthetic_pipeline

        pipe = build_synthetic_pipeline(
            synthetic, device=self.device, dtype=dtype, scale=entry.synthetic_scale or "full"
        )
        if offloaded:
            pipe.to("cpu")
            torch.cuda.empty_cache()
            log.info("model %s: synthetic weights built on %s, moved to CPU memory for offload", name, self.device)
        return pipe
