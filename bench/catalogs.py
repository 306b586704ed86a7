"""One catalog file per (model, setting) of the matrix, written next to the results so a run can be repeated.

The job params have no model field: a job runs on the catalog's default model unless a style picks another. The
derived catalog makes the row's model the default (its per-preset hand-overs stay as written: a row then reports
the model that ran) and gives every model the setting's speed table and per-preset overrides. Paths are the loaded
catalog's, already absolute, so the file works from any folder; any field of a model entry the catalog knows is
carried over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from bench.options import Setting
from models.catalog import Catalog, PresetOverride
from npc_video_client.contract import QualityPreset


def derived_catalog(catalog: Catalog, model: str, setting: Setting) -> dict[str, Any]:
    document = catalog.model_dump(mode="json", exclude_none=True)
    document["defaults"]["model"] = model
    document["defaults"].pop("loras_root", None)  # LoRA paths are resolved already
    for name, entry in catalog.models.items():
        speed = setting.speed_for(entry.speed).model_dump(mode="json", exclude_none=True)
        document["models"][name]["speed"] = speed
        if setting.presets:
            document["models"][name]["presets"] = {
                preset.value: setting.preset_for(
                    entry.presets.get(preset, PresetOverride()), set(catalog.loras)
                ).model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                for preset in QualityPreset
            }
    return document


def write_derived_catalog(catalog: Catalog, model: str, setting: Setting, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{model}--{setting.name}.toml"
    header = f"# npc-worker bench: model {model}, setting {setting.name}, derived from {catalog.source}\n"
    path.write_text(header + tomli_w.dumps(derived_catalog(catalog, model, setting)), encoding="utf-8")
    return path
