"""The bench's command-line values, checked before anything runs: models, presets, settings and job overrides.

Every problem is a `BenchUsageError` whose message names the value, the rule and what is known (exit status 2).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from models.catalog import Catalog, PresetOverride
from models.speed import MagCache, SpeedSettings, TaylorSeerCache
from npc_video_client.contract import NpcResponseParams, QualityPreset, describe_validation_error

CATALOG_SETTING = "catalog"
STOCK_SETTING = "stock"
SETTING_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Job params the bench sets itself: the preset comes from --presets, the image from --image, and every run has its
# own seed so that no run is a cache hit of another.
BENCH_OWNED_PARAMS = {
    "quality_preset": "use --presets",
    "seed": "the bench gives every run its own seed, so no run is a cache hit of another",
    "npc_base_image": "use --image",
    "loras": "use --loras (run i of a row takes the i-th LoRA) or a setting's preset.loras",
}


class BenchUsageError(ValueError):
    """A bad command line: the command prints the message and exits with status 2."""


def parse_scalar(text: str) -> Any:
    """A JSON scalar (`64`, `0.5`, `true`, `null`, `"x"`); anything else is taken as a string (`flash`)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (dict, list)):
        raise BenchUsageError(f"value {text!r} is not a scalar: give a number, true/false, null or a string")
    return value


def split_names(text: str, what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BenchUsageError(f"{what} is empty: give comma-separated names")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BenchUsageError(f"{what} names {', '.join(duplicates)} more than once")
    return names


def check_models(text: str | None, catalog: Catalog) -> list[str]:
    if text is None:
        return [catalog.defaults.model]
    names = split_names(text, "--models")
    for name in names:
        if name not in catalog.models:
            raise BenchUsageError(f"unknown model {name!r} in --models; the catalog has: {', '.join(catalog.models)}")
    return names


def check_loras(text: str | None, catalog: Catalog) -> list[str]:
    """--loras: catalog LoRAs that the runs of every row take in turn (run i takes the i-th modulo their count)."""
    if text is None:
        return []
    names = split_names(text, "--loras")
    for name in names:
        if name not in catalog.loras:
            known = ", ".join(sorted(catalog.loras)) or "none"
            raise BenchUsageError(f"unknown LoRA {name!r} in --loras; the catalog's [loras] has: {known}")
    return names


def check_swap_with(name: str | None, models: list[str], catalog: Catalog) -> str | None:
    """--swap-with: a catalog model brought onto the device before each run, so each run's model comes back."""
    if name is None:
        return None
    if name not in catalog.models:
        raise BenchUsageError(f"unknown model {name!r} in --swap-with; the catalog has: {', '.join(catalog.models)}")
    if name in models:
        raise BenchUsageError(f"--swap-with {name} is also in --models: give a model the rows do not run")
    return name


def check_presets(text: str) -> list[QualityPreset]:
    known = [preset.value for preset in QualityPreset]
    names = split_names(text, "--presets")
    for name in names:
        if name not in known:
            raise BenchUsageError(f"unknown preset {name!r} in --presets; known: {', '.join(known)}")
    return [QualityPreset(name) for name in names]


# -- job overrides --------------------------------------------------------------------------------------------
def parse_overrides(values: list[str], sample: dict[str, Any]) -> dict[str, Any]:
    """`--override width=64 --override "height=64 steps=2"`: job params fields set on every job, values JSON scalars;
    `PRESET:field=value` sets a field on that preset's jobs only (`quality:width=768`), over a plain one.

    `sample` is a complete job params object: the overridden one must still validate as NpcResponseParams, for
    every preset.
    """
    known = sorted(set(NpcResponseParams.model_fields) - set(BENCH_OWNED_PARAMS))
    presets = [preset.value for preset in QualityPreset]
    overrides: dict[str, Any] = {}
    for value in values:
        for pair in shlex.split(value):
            key, sign, text = pair.partition("=")
            scope, colon, field_name = key.rpartition(":")
            if not sign or not field_name or (colon and not scope):
                raise BenchUsageError(f"--override {pair!r} is not key=value (e.g. width=64 or quality:width=768)")
            if scope and scope not in presets:
                raise BenchUsageError(f"--override {pair!r}: unknown preset {scope!r}; known: {', '.join(presets)}")
            if field_name in BENCH_OWNED_PARAMS:
                raise BenchUsageError(f"--override {field_name} is not allowed: {BENCH_OWNED_PARAMS[field_name]}")
            if field_name not in NpcResponseParams.model_fields:
                raise BenchUsageError(f"unknown --override key {field_name!r}; job params fields: {', '.join(known)}")
            overrides[key] = parse_scalar(text)
    for preset in presets:
        try:
            NpcResponseParams.model_validate({**sample, **overrides_for(overrides, preset)})
        except ValidationError as exc:
            raise BenchUsageError(f"--override: {describe_validation_error(exc, 'params')}") from exc
    return overrides


def overrides_for(overrides: dict[str, Any], preset: str) -> dict[str, Any]:
    """The job params fields one preset's jobs get: the plain overrides, then that preset's own (`PRESET:field`)."""
    plain = {key: value for key, value in overrides.items() if ":" not in key}
    scoped = {key.partition(":")[2]: value for key, value in overrides.items() if key.startswith(f"{preset}:")}
    return {**plain, **scoped}


# -- settings -------------------------------------------------------------------------------------------------
def _speed_keys() -> list[str]:
    cache_options = {"type", *TaylorSeerCache.model_fields, *MagCache.model_fields, "threshold"}
    top = [name for name in SpeedSettings.model_fields if name != "cache"]
    return [*top, "cache", *(f"cache.{option}" for option in sorted(cache_options))]


SPEED_KEYS = _speed_keys()
# `preset.<field>`: a per-preset override (`[models.X.presets.P]`) set for every preset of every model, e.g. a
# step-distilled configuration: preset.steps=4,preset.cfg=1.0,preset.loras=lightx2v-4step (LoRAs joined by +).
PRESET_PREFIX = "preset."
PRESET_KEYS = [f"{PRESET_PREFIX}{name}" for name in PresetOverride.model_fields if name != "model"]
LORA_SEPARATOR = "+"
# `worker.<setting>`: worker settings of the setting's worker (the serve child's NPC_WORKER_*, or the in-process
# runner's settings), e.g. batch4:worker.max_batch=4 or nocache:worker.condition_cache_bytes=0; group_size runs the
# serve child as a worker group (g4:worker.group_size=4, --through queue only).
WORKER_PREFIX = "worker."
WORKER_KEYS = [
    f"{WORKER_PREFIX}{name}"
    for name in (
        "max_batch",
        "batch_wait_ms",
        "condition_cache_bytes",
        "device_memory_budget",
        "lora_cache_size",
        "group_size",
    )
]


@dataclass(frozen=True)
class Setting:
    """A column of the matrix: the catalog as written, stock diffusers, or the catalog with speed overrides and
    per-preset overrides."""

    name: str
    speed: dict[str, Any] = field(default_factory=dict)  # dotted keys of [models.X.speed] -> values
    presets: dict[str, Any] = field(default_factory=dict)  # fields of [models.X.presets.P], set for every P
    worker: dict[str, Any] = field(default_factory=dict)  # worker settings (field name -> value)

    @property
    def stock(self) -> bool:
        return self.name == STOCK_SETTING

    def describe(self) -> dict[str, Any]:
        if self.stock:
            return {"name": self.name, "kind": "stock"}
        described: dict[str, Any] = {"name": self.name, "kind": "catalog", "speed_overrides": self.speed}
        if self.presets:
            described["preset_overrides"] = self.presets
        if self.worker:
            described["worker_settings"] = self.worker
        return described

    def preset_for(self, base: PresetOverride, known_loras: set[str]) -> PresetOverride:
        """A model's override of one preset under this setting: the catalog's, with this setting's fields over it."""
        if not self.presets:
            return base
        data = {**base.model_dump(exclude_none=True), **self.presets}
        try:
            override = PresetOverride.model_validate(data)
        except ValidationError as exc:
            raise BenchUsageError(
                f"--setting {self.name}: the preset override {data} is invalid: "
                f"{describe_validation_error(exc, 'preset')}"
            ) from exc
        unknown = sorted({ref.partition(":")[0] for ref in override.loras} - known_loras)
        if unknown:
            raise BenchUsageError(
                f"--setting {self.name}: preset.loras names {', '.join(unknown)}, not in the catalog's [loras] "
                f"(known: {', '.join(sorted(known_loras)) or 'none'})"
            )
        return override

    def speed_for(self, base: SpeedSettings) -> SpeedSettings:
        """The speed table a model runs with under this setting (stock: none at all)."""
        if self.stock:
            return SpeedSettings()
        data = base.model_dump(exclude_none=True)
        # cache.type first: changing the cache type starts its options afresh
        for key in sorted(self.speed, key=lambda key: key != "cache.type"):
            value = self.speed[key]
            head, _, option = key.partition(".")
            if not option:
                if value is None:
                    data.pop(head, None)
                else:
                    data[head] = value
                continue
            cache = dict(data.get(head) or {})
            if option == "type" and cache.get("type") != value:
                cache = {}
            cache[option] = value
            data[head] = cache
        try:
            return SpeedSettings.model_validate(data)
        except ValidationError as exc:
            raise BenchUsageError(
                f"--setting {self.name}: the speed table {data} is invalid: {describe_validation_error(exc, 'speed')}"
            ) from exc


def parse_setting(text: str) -> Setting:
    """`catalog`, `stock` or `NAME:key=value,...` (keys of [models.X.speed], e.g. compile:compile=true, and
    `preset.<field>` of the per-preset overrides, e.g. distilled:preset.steps=4,preset.cfg=1.0)."""
    name, colon, body = text.partition(":")
    name = name.strip()
    usage = (
        f"use {CATALOG_SETTING}, {STOCK_SETTING} or NAME:key=value,... with keys {', '.join(SPEED_KEYS)}, "
        f"{', '.join(PRESET_KEYS)}, {', '.join(WORKER_KEYS)}"
    )
    if not colon:
        if name in (CATALOG_SETTING, STOCK_SETTING):
            return Setting(name)
        raise BenchUsageError(f"unknown setting {text!r} in --setting; {usage}")
    if name in (CATALOG_SETTING, STOCK_SETTING) or not SETTING_NAME.match(name):
        raise BenchUsageError(
            f"setting name {name!r} in --setting {text!r} must be letters, digits, _ or - and not "
            f"{CATALOG_SETTING!r} or {STOCK_SETTING!r}"
        )
    speed: dict[str, Any] = {}
    presets: dict[str, Any] = {}
    worker: dict[str, Any] = {}
    for pair in (part.strip() for part in body.split(",")):
        key, sign, value = pair.partition("=")
        if sign and key in WORKER_KEYS:
            worker[key.removeprefix(WORKER_PREFIX)] = parse_scalar(value)
            continue
        if sign and key in PRESET_KEYS:
            field_name = key.removeprefix(PRESET_PREFIX)
            presets[field_name] = value.split(LORA_SEPARATOR) if field_name == "loras" else parse_scalar(value)
            continue
        if not sign or key not in SPEED_KEYS:
            raise BenchUsageError(f"unknown key {key!r} in --setting {text!r}; {usage}")
        speed[key] = parse_scalar(value)
    return Setting(name, speed, presets, worker)  # values are checked merged with the catalog, before anything runs


def check_settings(texts: list[str]) -> list[Setting]:
    settings = [parse_setting(text) for text in texts] or [Setting(CATALOG_SETTING)]
    names = [setting.name for setting in settings]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BenchUsageError(f"--setting names {', '.join(duplicates)} more than once")
    return settings
