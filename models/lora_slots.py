"""LoRA hotswap slots: a fixed set of adapters whose tensors are overwritten in place, so that a compiled denoiser
never sees its modules change and a LoRA change never recompiles it (`[models.X.speed] lora_slots = N`). One of
the two LoRA strategies behind models.loras' interface; a job may use at most N LoRAs, and the N slots are the
cache (the pool's LoRA cache size does not apply).

The first time a LoRA is needed (or at warm-up, `prime`), the pipeline is prepared for hotswapping (diffusers'
`enable_lora_hotswap(target_rank=R)`: the LoRA scalings become tensors and the weights are padded to rank R =
`lora_rank`) and the N adapters `slot0` .. `slotN-1` are created, each from that same LoRA file, all of them
active. From then on a LoRA that is in no slot is loaded with `hotswap=True` into the least recently used slot the
job does not need (its tensors are overwritten in place), and each slot's weight is set by filling its scaling
tensors: the job's weight for the LoRA, 0 for a slot the job does not use. A job without LoRAs runs with every
slot at 0, which adds exact zeros. The slots are also the cache: switching between LoRAs that are in slots costs
only the scaling fills.

Limits (diffusers and PEFT hotswapping): every LoRA must target the layers of the first one loaded, or a subset
of them (list the LoRA that targets the most layers first: warm-up primes the slots with it); ranks up to
`lora_rank`; LoRAs of one model must agree on dropout, rsLoRA, DoRA and per-layer alpha pattern; no text-encoder
LoRAs. A LoRA breaking one of these fails its job with `invalid_params`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.loras import acting, adapter_names
from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from pipelines.family import Family
from pipelines.request import LoraChoice

log = logging.getLogger(__name__)

SLOT_PREFIX = "slot"
# Keys holding a LoRA's down projection (rank x in) in the formats diffusers reads: PEFT, kohya, ComfyUI.
DOWN_KEY_MARKERS = (".lora_A.", ".lora_down.", ".lora.down.")


def lora_file_rank(path: Path) -> int | None:
    """The largest rank in a LoRA file, from the safetensors header alone (no tensor is read); None if unknown."""
    from safetensors import safe_open

    ranks = []
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (a safetensors handle is not a mapping)
            if any(marker in key for marker in DOWN_KEY_MARKERS) and key.endswith(".weight"):
                shape = handle.get_slice(key).get_shape()
                if len(shape) >= 2:
                    ranks.append(int(shape[0]))
    return max(ranks) if ranks else None


@dataclass
class _Slot:
    name: str  # the adapter's name in the pipeline
    lora: str | None = None  # the LoRA it holds; None: a copy of the priming LoRA, free for any
    version: str = ""
    weight: float | None = None  # the weight its scalings are filled for; None: unknown, fill before use
    last_used: int = 0
    layers: list[Any] = field(default_factory=list)  # the LoRA layers that hold this slot
    bases: list[float] = field(default_factory=list)  # per layer: the held LoRA's own scaling (alpha / rank)


def _lora_layers(pipe: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [
        module
        for component in pipe.components.values()
        if hasattr(component, "modules")
        for module in component.modules()
        if isinstance(module, LoraLayer)
    ]


def move_scalings(pipe: Any, device: Any) -> int:
    """Put the tensor scalings of every LoRA layer (hotswap slots: PEFT turned them into tensors) on `device`; how
    many moved. Neither `pipe.to()` nor diffusers' offload hooks move them (they are no parameters or buffers), so
    after a move they would stay where they were made. Moved in place (`.data`, between the CPU and a GPU): the
    same tensor objects, so a compiled denoiser sees the same inputs and `_set_weight` keeps filling them."""
    import torch

    target = torch.device(device)
    moved = 0
    for layer in _lora_layers(pipe):
        for adapter, value in layer.scaling.items():
            if not isinstance(value, torch.Tensor):
                continue
            if value.device.type == target.type and target.index in (None, value.device.index):
                continue
            there = value.data.to(target)
            if torch._has_compatible_shallow_copy_type(value, there):  # CPU <-> CUDA: as Module.to moves parameters
                value.data = there
            else:  # e.g. the meta device: a new tensor in its place
                layer.scaling[adapter] = there
            moved += 1
    return moved


class LoraSlots:
    """`count` adapters `slot0`.. padded to `rank`, holding the LoRAs jobs ask for (least recently used replaced)."""

    def __init__(self, pipe: Any, model_name: str, family: Family, count: int, rank: int) -> None:
        self._pipe = pipe
        self._model_name = model_name
        self._family = family
        self._rank = rank
        self._slots = [_Slot(f"{SLOT_PREFIX}{index}") for index in range(count)]
        self._primer: LoraChoice | None = None
        self._clock = itertools.count(1)
        self.disk_loads = 0
        self.evictions = 0

    @property
    def loaded(self) -> list[str]:
        """The LoRAs held in slots (by name), in slot order."""
        return [slot.lora for slot in self._slots if slot.lora is not None]

    @property
    def primed(self) -> bool:
        return self._primer is not None

    @property
    def needs_priming(self) -> bool:
        return not self.primed

    @property
    def slot_names(self) -> list[str]:
        return [slot.name for slot in self._slots]

    def weights(self) -> dict[str, float | None]:
        """Slot -> the weight its scalings are filled for (what the next denoiser call runs with)."""
        return {slot.name: slot.weight for slot in self._slots}

    # -- priming ----------------------------------------------------------------------------------------------
    def prime(self, lora: LoraChoice) -> None:
        """Create every slot from this LoRA, each at weight 0: the layers it targets are the layers every later
        LoRA may target. Run it before the denoiser first compiles (warm-up); later, this one load recompiles."""
        if self.primed:
            return
        self._check_rank(lora)
        started = time.perf_counter()
        try:
            for slot in self._slots:
                self._create(slot, lora)
        except Exception as exc:
            created = [slot.name for slot in self._slots if slot.name in adapter_names(self._pipe)]
            if created:
                self._pipe.delete_adapters(created)
            raise self._does_not_fit(lora, exc) from exc
        self._primer = lora
        self._activate_all_slots()
        for slot in self._slots:
            self._read_bases(slot)
            self._set_weight(slot, 0.0)
        first = self._slots[0]  # holds the priming LoRA as any slot holds its LoRA; the others are free copies
        first.lora, first.version = lora.name, _version(lora)
        self.disk_loads += 1
        log.info(
            "model %s: %d LoRA hotswap slots of rank %d primed with %s in %.0f ms",
            self._model_name,
            len(self._slots),
            self._rank,
            lora.name,
            (time.perf_counter() - started) * 1000,
        )

    def _create(self, slot: _Slot, lora: LoraChoice) -> None:
        """A new adapter named after the slot, padded to the target rank, scalings as tensors (diffusers applies
        `enable_lora_hotswap`'s preparation to the next adapter loaded, once: so it is armed before each)."""
        first = not adapter_names(self._pipe)
        self._pipe.enable_lora_hotswap(target_rank=self._rank, check_compiled="error" if first else "ignore")
        self._family.load_lora(self._pipe, lora.path, slot.name)

    def _activate_all_slots(self) -> None:
        """Every slot active in every LoRA layer (a slot's weight, not its activity, decides its effect: changing
        the active set would change what the compiled graph guards on)."""
        names = self.slot_names
        for layer in _lora_layers(self._pipe):
            layer.set_adapter(names, inference_mode=True)

    # -- one job's LoRAs ----------------------------------------------------------------------------------------
    def activate(self, requested: Sequence[LoraChoice]) -> None:
        """Put these LoRAs (those of weight 0 left out) into slots and fill every slot's scalings with its weight."""
        loras = acting(requested)
        if len(loras) > len(self._slots):
            names = ", ".join(quote(lora.name) for lora in loras)
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"model {quote(self._model_name)} runs LoRAs in {len(self._slots)} hotswap slot(s) "
                f"(speed.lora_slots = {len(self._slots)}), and this job asks for {len(loras)} at once ({names}): "
                f"use at most {len(self._slots)} LoRAs per job, or raise lora_slots in the catalog",
            )
        if not loras:
            for slot in self._slots:
                if self.primed:
                    self._set_weight(slot, 0.0)
            return
        if not self.primed:
            self.prime(loras[0])
        chosen = self._assign(loras)
        stamp = next(self._clock)
        for slot in self._slots:
            lora = chosen.get(slot.name)
            self._set_weight(slot, lora.weight if lora is not None else 0.0)
            if lora is not None:
                slot.last_used = stamp

    def _assign(self, loras: Sequence[LoraChoice]) -> dict[str, LoraChoice]:
        """Slot name -> LoRA: a LoRA already in a slot stays there; the others go into free slots first, then
        into the least recently used slots this job does not need."""
        chosen: dict[str, LoraChoice] = {}
        missing = []
        for lora in loras:
            slot = next((s for s in self._slots if s.lora == lora.name and s.version == _version(lora)), None)
            if slot is None:
                missing.append(lora)
            else:
                chosen[slot.name] = lora
        spare = sorted(
            (slot for slot in self._slots if slot.name not in chosen),
            key=lambda slot: (slot.lora is not None, slot.last_used),
        )
        for lora, slot in zip(missing, spare, strict=False):
            self._swap_in(slot, lora)
            chosen[slot.name] = lora
        return chosen

    def _swap_in(self, slot: _Slot, lora: LoraChoice) -> None:
        """Overwrite the slot's tensors with this LoRA's (hotswap): same modules, same shapes, no recompilation."""
        self._check_rank(lora)
        started = time.perf_counter()
        try:
            self._family.load_lora(self._pipe, lora.path, slot.name, hotswap=True)
        except Exception as exc:
            self._restore(slot)
            raise self._does_not_fit(lora, exc) from exc
        if slot.lora is not None:
            self.evictions += 1
            log.info("freed LoRA %s from %s (slot %s)", slot.lora, self._model_name, slot.name)
        slot.lora, slot.version, slot.weight = lora.name, _version(lora), None
        self._read_bases(slot)
        self.disk_loads += 1
        log.info(
            "hotswapped LoRA %s into %s slot %s in %.0f ms",
            lora.name,
            self._model_name,
            slot.name,
            (time.perf_counter() - started) * 1000,
        )

    def _restore(self, slot: _Slot) -> None:
        """A failed hotswap leaves the slot half-written, and diffusers deletes the adapter when it still was
        active: rebuild it from the priming LoRA (a compiled denoiser recompiles once after this)."""
        assert self._primer is not None  # slots exist only once primed
        slot.lora, slot.version, slot.weight = None, "", None
        if slot.name in adapter_names(self._pipe):
            self._family.load_lora(self._pipe, self._primer.path, slot.name, hotswap=True)
        else:
            log.warning(
                "model %s: slot %s was removed by a failed hotswap; recreated from %s (a compiled denoiser "
                "recompiles once)",
                self._model_name,
                slot.name,
                self._primer.name,
            )
            self._create(slot, self._primer)
            self._activate_all_slots()
        self._read_bases(slot)
        self._set_weight(slot, 0.0)

    # -- scalings -------------------------------------------------------------------------------------------------
    def _read_bases(self, slot: _Slot) -> None:
        """Each layer's scaling for the slot as the held LoRA sets it (alpha / rank), read in one transfer; the
        scalings are first put where the denoiser computes (`_execution_device`: the GPU also when offload hooks
        keep the weights in CPU memory), since PEFT made them where the weights were when they were loaded."""
        import torch

        move_scalings(self._pipe, self._pipe._execution_device)
        slot.layers = [layer for layer in _lora_layers(self._pipe) if slot.name in layer.scaling]
        scalings = [layer.scaling[slot.name] for layer in slot.layers]
        if any(not isinstance(value, torch.Tensor) for value in scalings):
            raise RuntimeError(f"slot {slot.name}: LoRA scalings are not tensors; the slot was not prepared")
        values = torch.stack([value.detach().float().reshape(()).cpu() for value in scalings]) if scalings else None
        slot.bases = values.tolist() if values is not None else []

    def _set_weight(self, slot: _Slot, weight: float) -> None:
        """Fill the slot's scaling tensors in place (a new float would be a new constant to the compiled graph)."""
        if slot.weight == weight:
            return
        for layer, base in zip(slot.layers, slot.bases, strict=True):
            layer.scaling[slot.name].fill_(base * weight)
        slot.weight = weight

    # -- helpers --------------------------------------------------------------------------------------------------
    def _check_rank(self, lora: LoraChoice) -> None:
        rank = lora_file_rank(lora.path)
        if rank is not None and rank > self._rank:
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"LoRA {quote(lora.name)} has rank {rank}, more than model {quote(self._model_name)}'s hotswap slots "
                f"hold (speed.lora_rank = {self._rank}): set lora_rank to at least {rank} in the catalog",
            )

    def _does_not_fit(self, lora: LoraChoice, exc: Exception) -> JobError:
        return JobError(
            ErrorCode.INVALID_PARAMS,
            f"LoRA {quote(lora.name)} ({lora.path.name}) does not fit model {quote(self._model_name)}'s hotswap "
            f"slots: {exc} (in lora_slots mode every LoRA must target the layers of the first one loaded, or a "
            "subset, with the same alpha pattern)",
        )


def _version(lora: LoraChoice) -> str:
    return lora.digest or str(lora.path)
