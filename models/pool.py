"""Loaded pipelines by catalog model name: each loaded from disk once per process and kept resident."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from models.catalog import Catalog
from models.loras import AdapterCache
from pipelines.families import FAMILIES
from pipelines.family import Family
from worker.contract import ErrorCode
from worker.errors import JobError

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


@dataclass
class ModelPool:
    catalog: Catalog
    device: str
    lora_cache_size: int = 8
    _loaded: dict[str, LoadedModel] = field(default_factory=dict)
    disk_loads: int = 0

    def get(self, name: str) -> LoadedModel:
        loaded = self._loaded.get(name)
        if loaded is None:
            loaded = self._load(name)
            self._loaded[name] = loaded
        return loaded

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

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
        started = time.perf_counter()
        pipe = pipeline_class.from_pretrained(entry.path, dtype=getattr(torch, entry.dtype), local_files_only=True)
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        load_ms = (time.perf_counter() - started) * 1000
        self.disk_loads += 1
        log.info("loaded model %s (%s) from %s onto %s in %.0f ms", name, family.name, entry.path, self.device, load_ms)
        return LoadedModel(name, family, pipe, AdapterCache(pipe, name, self.lora_cache_size), load_ms)
