"""Turn validated params + catalog + base image size into the exact request that runs and is reported.

Precedence (docs/contract.md section 2): explicit job params > the model's per-preset override > the preset table.
Frame timing (`motion`, pipelines.timing): the model's per-preset override > the model's entry > native.
A request beyond the model's limits (models.limits: frames and sizes its tables cover) is refused here, before the
model loads, as invalid_params: it would fail the same way on every attempt.
"""

from __future__ import annotations

import logging

from models.catalog import Catalog, PresetOverride, StyleEntry
from models.identity import file_digest
from models.limits import model_limits
from npc_video_client.contract import ErrorCode, NpcResponseParams, parse_lora_ref
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from pipelines.families import FAMILIES
from pipelines.family import Family
from pipelines.grid import fit_area, snap_side
from pipelines.presets import DEFAULT_DURATION_SEC, PRESETS
from pipelines.prompt import build_prompt, default_seed
from pipelines.request import LoraChoice, ResolvedRequest

log = logging.getLogger(__name__)


def _style(params: NpcResponseParams, catalog: Catalog) -> StyleEntry | None:
    if params.art_style is None:
        return None
    style = catalog.styles.get(params.art_style)
    if style is None:
        log.info(
            "art_style %r has no [styles.%s] in the catalog; using the defaults",
            params.art_style.value,
            params.art_style.value,
        )
    return style


def choose_model(params: NpcResponseParams, catalog: Catalog) -> str:
    """The style's per-preset model, else the style's model, else the default; then the chosen model's
    per-preset hand-over (`[models.X.presets.realtime] model = "..."`), one step at most."""
    style = _style(params, catalog)
    preset = params.quality_preset
    if style and preset in style.presets:
        return style.presets[preset].model
    name = style.model if style and style.model else catalog.defaults.model
    entry = catalog.models.get(name)
    handed_to = entry.presets[preset].model if entry and preset in entry.presets else None
    return handed_to or name


def _loras(
    params: NpcResponseParams, catalog: Catalog, family: Family, override: PresetOverride, style: StyleEntry | None
) -> tuple[LoraChoice, ...]:
    """Preset override LoRAs, then the style's, then the job's; a later mention of a name sets its weight."""
    refs = [*override.loras, *(style.loras if style else []), *params.loras]
    chosen: dict[str, float] = {}
    for ref in refs:
        name, weight = parse_lora_ref(ref)
        entry = catalog.loras.get(name)
        if entry is None:
            known = ", ".join(sorted(catalog.loras)) or "none"
            raise JobError(ErrorCode.UNKNOWN_LORA, f"LoRA {quote(name)} is not in the catalog (known: {known})")
        chosen.pop(name, None)
        chosen[name] = entry.weight if weight is None else weight
    if chosen and not family.supports_loras:
        raise JobError(
            ErrorCode.INVALID_PARAMS, f"model family {quote(family.name)} does not take LoRAs: remove 'loras'"
        )
    return tuple(
        LoraChoice(name, weight, catalog.loras[name].path, _digest(name, catalog)) for name, weight in chosen.items()
    )


def _digest(name: str, catalog: Catalog) -> str:
    try:
        return file_digest(catalog.loras[name].path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise JobError(ErrorCode.INTERNAL_ERROR, f"LoRA {quote(name)}: its file cannot be read ({reason})") from exc


def _size(
    params: NpcResponseParams, override: PresetOverride, family: Family, image_size: tuple[int, int]
) -> tuple[int, int]:
    multiple = family.size_multiple
    aspect = image_size[0] / image_size[1]
    if params.width is not None and params.height is not None:
        width, height = snap_side(params.width, multiple), snap_side(params.height, multiple)
    elif params.width is not None:
        width, height = snap_side(params.width, multiple), snap_side(params.width / aspect, multiple)
    elif params.height is not None:
        width, height = snap_side(params.height * aspect, multiple), snap_side(params.height, multiple)
    else:
        table = PRESETS[params.quality_preset]
        area = (override.width or table.width) * (override.height or table.height)
        width, height = fit_area(area, aspect, multiple)
    if (params.width, params.height) not in ((None, None), (width, height)):
        log.info(
            "size %sx%s snapped to %dx%d (family %s: multiples of %d)",
            params.width,
            params.height,
            width,
            height,
            family.name,
            multiple,
        )
    return width, height


def resolve(params: NpcResponseParams, catalog: Catalog, image_size: tuple[int, int]) -> ResolvedRequest:
    """Apply the preset table, catalog overrides, style, grids and prompt rules to one job's params."""
    model_name = choose_model(params, catalog)
    model = catalog.models.get(model_name)
    if model is None:
        raise JobError(ErrorCode.UNKNOWN_MODEL, f"model {quote(model_name)} is not in the catalog")
    family = FAMILIES[model.family]
    preset = params.quality_preset
    table = PRESETS[preset]
    override = model.presets.get(preset, PresetOverride())
    style = _style(params, catalog)
    loras = _loras(params, catalog, family, override, style)
    width, height = _size(params, override, family, image_size)
    fps = params.fps or override.fps or table.fps
    duration = params.duration if params.duration is not None else DEFAULT_DURATION_SEC
    timing = family.frame_timing(fps, duration, override.motion or model.motion)
    steps = params.steps or override.steps or table.steps
    problem = model_limits(model).violation(
        width=width, height=height, frames=timing.generated_frames, fps=timing.generated_fps, steps=steps
    )
    if problem is not None:
        raise JobError(ErrorCode.INVALID_PARAMS, f"model {quote(model_name)} {problem}")
    triggers = [catalog.loras[lora.name].trigger or "" for lora in loras if lora.weight != 0]
    prompt = build_prompt(
        base=params.prompt or params.npc_name,
        intensity=params.intensity,
        expression=params.expression,
        emotion=params.emotion,
        animation=params.animation,
        style_suffix=style.prompt_suffix if style else None,
        triggers=triggers,
    )
    return ResolvedRequest(
        model=model_name,
        family=family.name,
        preset=preset,
        width=width,
        height=height,
        num_frames=timing.num_frames,
        fps=timing.fps,
        generated_frames=timing.generated_frames,
        generated_fps=timing.generated_fps,
        steps=steps,
        cfg=params.cfg if params.cfg is not None else (override.cfg if override.cfg is not None else table.cfg),
        seed=params.seed if params.seed is not None else default_seed(params.npc_id),
        prompt=prompt if family.takes_prompt else None,
        negative_prompt=(params.negative_prompt or catalog.defaults.negative_prompt)
        if family.takes_negative_prompt
        else None,
        loras=loras,
        motion=params.intensity,
    )
