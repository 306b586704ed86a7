"""Compilation ahead of the first job: a model with `compile` on compiles its blocks on their first call, for the
shapes they see, which on a GPU takes minutes when nothing is cached. The service runs `warm_up` at start, before
/readyz turns ready, so that no job waits for it.

For each model that compiles on this device: its LoRA hotswap slots are primed (models.lora_slots), then every
quality preset that runs on it is resolved as a job would be (the preset table, the model's overrides, the default
duration, the first catalog NPC's image or a drawn square) and one short generation runs per distinct shape (width,
height, frames, one or two guidance passes) at `WARM_UP_STEPS` steps, stopping at the latents (the VAE does not
compile). Inductor's caches go under the data directory first (models.compile_cache), so a restarted worker
finds its compiled kernels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from PIL import Image

from models.catalog import Catalog
from models.compile_cache import configure_compile_cache
from models.identity import file_digest
from models.pool import LoadedModel, ModelPool
from models.resolution import resolve
from npc_video_client.contract import NpcResponseParams, QualityPreset, parse_lora_ref
from npc_video_client.errors import JobError
from pipelines.request import LoraChoice, ResolvedRequest
from worker.images import fit_image, load_base_image
from worker.settings import Settings

log = logging.getLogger(__name__)

WARM_UP_STEPS = 2
WARM_UP_SEED = 0
STAND_IN_SIZE = (512, 512)  # the drawn image when the catalog has no NPC image at hand: square, like the presets
WARM_UP_PARAMS = {
    "npc_id": "warm-up",
    "npc_name": "Warm-up",
    "expression": "neutral",
    "emotion": "calm",
    "animation": "idle",
    "intensity": 0.5,
    "steps": WARM_UP_STEPS,
}


@dataclass(frozen=True)
class Shape:
    """What a compiled block's graph depends on (besides the model): the latent size and the batch of a call."""

    width: int
    height: int
    frames: int
    guided: bool  # cfg > 1: an unconditional pass too (some families batch it with the conditional one)

    @classmethod
    def of(cls, request: ResolvedRequest) -> Shape:
        return cls(request.width, request.height, request.generated_frames, request.cfg > 1)

    def describe(self) -> str:
        return f"{self.width}x{self.height}x{self.frames}" + (" cfg" if self.guided else "")


def warm_up(catalog: Catalog, pool: ModelPool, settings: Settings) -> list[str]:
    """Compile every model with `compile` on for its presets' shapes; one line per warmed shape."""
    names = [name for name, entry in catalog.models.items() if entry.speed.compiles_on(pool.device)]
    if not names:
        return []
    configure_compile_cache(settings.data_dir)
    image = _start_image(catalog, settings)
    warmed: list[str] = []
    for name in names:
        loaded = pool.get(name)
        _prime_slots(loaded, catalog)
        seen: set[Shape] = set()
        for preset in QualityPreset:
            try:
                request = _request(catalog, name, preset, image.size)
                if request is None or Shape.of(request) in seen:
                    continue
                seen.add(Shape.of(request))
                seconds = _generate(loaded, request, image)
            except JobError as exc:  # e.g. a preset beyond the model's limits or with more LoRAs than slots: its
                # jobs fail alike, the other presets run
                log.warning("warm-up: %s %s not warmed: %s: %s", name, preset.value, exc.code.value, exc.message)
                continue
            line = f"{name} {preset.value} {Shape.of(request).describe()} in {seconds:.1f} s"
            log.info("warm-up: %s", line)
            warmed.append(line)
    return warmed


def _start_image(catalog: Catalog, settings: Settings) -> Image.Image:
    """The first catalog NPC's base image that loads (the aspect jobs most likely have), else a drawn square."""
    for npc_id, npc in catalog.npcs.items():
        try:
            return load_base_image(npc.base_image, settings, trusted=True).image
        except JobError as exc:
            log.info("warm-up: NPC %s's base image is not usable here (%s); trying the next", npc_id, exc.message)
    image = Image.new("RGB", STAND_IN_SIZE, (96, 112, 160))
    image.paste((222, 184, 150), (160, 96, 352, 352))  # a face-sized block: the VAE sees some structure
    return image


def _request(catalog: Catalog, model: str, preset: QualityPreset, size: tuple[int, int]) -> ResolvedRequest | None:
    """The preset as a job on `model` resolves it; None when the catalog hands the preset to another model."""
    defaults = catalog.defaults.model_copy(update={"model": model})
    params = NpcResponseParams.model_validate({**WARM_UP_PARAMS, "quality_preset": preset})
    request = resolve(params, catalog.model_copy(update={"defaults": defaults}), size)
    return request if request.model == model else None


def _prime_slots(loaded: LoadedModel, catalog: Catalog) -> None:
    """Hotswap slots get their layers now, before anything compiles: from the first preset LoRA of the model, else
    the first catalog LoRA that fits it (a LoRA made for another model is skipped)."""
    if not loaded.adapters.needs_priming or not loaded.family.supports_loras:
        return
    entry = catalog.models[loaded.name]
    preset_loras = [parse_lora_ref(ref)[0] for override in entry.presets.values() for ref in override.loras]
    for lora_name in dict.fromkeys([*preset_loras, *catalog.loras]):
        lora = catalog.loras[lora_name]
        try:
            loaded.adapters.prime(LoraChoice(lora_name, lora.weight, lora.path, file_digest(lora.path)))
            return
        except JobError as exc:
            log.info("warm-up: LoRA %s cannot prime %s's slots: %s", lora_name, loaded.name, exc.message)
    log.warning(
        "warm-up: no catalog LoRA fits %s; its slots are made by the first LoRA job (one recompile)", loaded.name
    )


def _generate(loaded: LoadedModel, request: ResolvedRequest, image: Image.Image) -> float:
    """One short call at the request's shape with its LoRAs, up to the latents; seconds it took."""
    import torch

    started = time.perf_counter()
    loaded.adapters.activate(request.loras)
    kwargs = loaded.family.call_kwargs(request, fit_image(image, request.width, request.height))
    kwargs["output_type"] = "latent"
    loaded.pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(WARM_UP_SEED))
    return time.perf_counter() - started
