"""The LoRA adapters of one resident pipeline: two strategies behind one interface, chosen when the model is loaded
(models.pool): named adapters (this module) by default, hotswap slots (models.lora_slots) with
`[models.X.speed] lora_slots = N`, which a compiled denoiser needs.

Named adapters: each file is loaded once as an adapter named after the LoRA and switched per job with
`set_adapters(names, weights)` (no model reload, no re-read of the file); a job without LoRAs runs with adapters
disabled, which gives bit-identical output to a pipeline that never had one. The least recently used adapter beyond
`capacity` is freed with `delete_adapters` (plain unloading leaks).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from pipelines.family import Family
from pipelines.request import LoraChoice

log = logging.getLogger(__name__)


class LoraAdapters(Protocol):
    """What the runner, warm-up and metrics use of a model's LoRA strategy."""

    @property
    def loaded(self) -> list[str]:
        """The LoRAs held now, by catalog name."""
        ...

    @property
    def disk_loads(self) -> int:
        """LoRA files read into this model."""
        ...

    @property
    def evictions(self) -> int:
        """LoRAs freed (or overwritten) to make room for another."""
        ...

    @property
    def needs_priming(self) -> bool:
        """Whether `prime` has work to do before the denoiser first compiles."""
        ...

    def prime(self, lora: LoraChoice) -> None:
        """Prepare the model for LoRAs like this one ahead of the first job (warm-up)."""
        ...

    def activate(self, requested: Sequence[LoraChoice]) -> None:
        """Make exactly these LoRAs active with these weights (none, or all weight 0: no LoRA acts)."""
        ...


def acting(requested: Sequence[LoraChoice]) -> list[LoraChoice]:
    """The LoRAs that change the output: weight 0 is the same as not asking for the LoRA."""
    return [lora for lora in requested if lora.weight != 0]


def adapter_names(pipe: Any) -> set[str]:
    """Every adapter loaded into any component of the pipeline."""
    return {name for names in pipe.get_list_adapters().values() for name in names}


class NamedAdapters:
    """One adapter per LoRA, named after it, `capacity` of them kept (least recently used freed first)."""

    def __init__(self, pipe: Any, model_name: str, family: Family, capacity: int) -> None:
        self._pipe = pipe
        self._model_name = model_name
        self._family = family
        self._capacity = capacity
        self._loaded: OrderedDict[str, str] = OrderedDict()  # LoRA name -> the version (digest) loaded
        self.disk_loads = 0
        self.evictions = 0

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    @property
    def needs_priming(self) -> bool:
        return False  # each LoRA is loaded by its first job

    def prime(self, lora: LoraChoice) -> None:
        return None

    def activate(self, requested: Sequence[LoraChoice]) -> None:
        loras = acting(requested)
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
            if lora.name in adapter_names(self._pipe):
                self._pipe.delete_adapters(lora.name)
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"LoRA {quote(lora.name)} ({lora.path.name}) does not fit model {quote(self._model_name)}: {exc}",
            ) from exc
        self._loaded[lora.name] = version
        self.disk_loads += 1
        log.info(
            "loaded LoRA %s into %s in %.0f ms", lora.name, self._model_name, (time.perf_counter() - started) * 1000
        )

    def _evict_beyond_capacity(self, keep: set[str]) -> None:
        for name in list(self._loaded):
            if len(self._loaded) <= self._capacity:
                return
            if name not in keep:
                self._delete(name)
                self.evictions += 1

    def _delete(self, name: str) -> None:
        self._pipe.delete_adapters(name)
        del self._loaded[name]
        log.info("freed LoRA %s from %s", name, self._model_name)
