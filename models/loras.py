"""LoRA adapters of one resident pipeline: each file loaded once as a named adapter, switched per job.

Switching is `set_adapters(names, weights)` (no model reload, no re-read of the file); a job without LoRAs
runs with adapters disabled, which gives bit-identical output to a pipeline that never had one.
The least recently used adapter beyond `capacity` is freed with `delete_adapters` (plain unloading leaks).

With `[models.X.speed] lora_slots = N` the cache runs in hotswap mode instead (models.lora_slots): N fixed
adapters whose tensors are overwritten in place, which a compiled denoiser needs so that a LoRA change does not
recompile it; a job may then use at most N LoRAs, and the N slots are the cache (`capacity` does not apply).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from models.lora_slots import LoraSlots
from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from pipelines.family import Family
from pipelines.request import LoraChoice

log = logging.getLogger(__name__)


class AdapterCache:
    def __init__(
        self, pipe: Any, model_name: str, capacity: int, family: Family, *, slots: int | None = None, rank: int = 128
    ) -> None:
        self._pipe = pipe
        self._model_name = model_name
        self._family = family
        self._capacity = capacity
        self._loaded: OrderedDict[str, str] = OrderedDict()
        self._disk_loads = 0
        self._evictions = 0
        # hotswap mode: `slots` fixed adapters padded to `rank` (models.lora_slots)
        self.slots = LoraSlots(pipe, model_name, family, slots, rank) if slots else None

    @property
    def loaded(self) -> list[str]:
        return self.slots.loaded if self.slots is not None else list(self._loaded)

    @property
    def disk_loads(self) -> int:
        """LoRA files read into this model (hotswap mode: loads into slots)."""
        return self.slots.disk_loads if self.slots is not None else self._disk_loads

    @property
    def evictions(self) -> int:
        """LoRAs freed to make room (hotswap mode: overwritten in their slot)."""
        return self.slots.evictions if self.slots is not None else self._evictions

    def prime(self, lora: LoraChoice) -> bool:
        """Hotswap mode: create the slots from this LoRA now (warm-up, before the denoiser first compiles).
        False when there is nothing to do: named adapters, or slots already made."""
        if self.slots is None or self.slots.primed:
            return False
        self.slots.prime(lora)
        return True

    def activate(self, requested: Sequence[LoraChoice]) -> None:
        """Make exactly these adapters active with these weights (none, or all weight 0: adapters disabled)."""
        loras = [lora for lora in requested if lora.weight != 0]
        if self.slots is not None:
            self.slots.activate(loras)
            return
        wanted = {lora.name for lora in loras}
        for lora in loras:
            self._ensure_loaded(lora)
        self._evict_beyond_capacity(keep=wanted)
        if loras:
            self._pipe.enable_lora()
            self._pipe.set_adapters([lora.name for lora in loras], [lora.weight for lora in loras])
        elif self._loaded:
            self._pipe.disable_lora()

    def _ensure_loaded(self, lora: LoraChoice) -> None:
        version = lora.digest or str(lora.path)
        if self._loaded.get(lora.name) == version:
            self._loaded.move_to_end(lora.name)
            return
        if lora.name in self._loaded:  # another file under this name, or the file was replaced in place
            self._delete(lora.name)
        started = time.perf_counter()
        try:
            self._family.load_lora(self._pipe, lora.path, lora.name)
        except Exception as exc:
            if lora.name in self._adapter_names():
                self._pipe.delete_adapters(lora.name)
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"LoRA {quote(lora.name)} ({lora.path.name}) does not fit model {quote(self._model_name)}: {exc}",
            ) from exc
        self._loaded[lora.name] = version
        self._disk_loads += 1
        log.info(
            "loaded LoRA %s into %s in %.0f ms", lora.name, self._model_name, (time.perf_counter() - started) * 1000
        )

    def _evict_beyond_capacity(self, keep: set[str]) -> None:
        for name in list(self._loaded):
            if len(self._loaded) <= self._capacity:
                return
            if name not in keep:
                self._delete(name)
                self._evictions += 1

    def _delete(self, name: str) -> None:
        self._pipe.delete_adapters(name)
        del self._loaded[name]
        log.info("freed LoRA %s from %s", name, self._model_name)

    def _adapter_names(self) -> set[str]:
        return {name for names in self._pipe.get_list_adapters().values() for name in names}
