"""A catalog model's limits (pipelines.limits), read before the model loads so that request resolution can refuse
what it cannot run: from the checkpoint's transformer/ and vae/ config.json and scheduler/scheduler_config.json
(a directory, or a Hugging Face repository in the local cache), or for a synthetic model from its recipe. Read once
per model and process.

A model whose configs cannot be read has no known limits: its requests are not checked (and its load reports what
is missing). That is logged once.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from models.catalog import ModelEntry
from models.synthetic.recipe import Scale
from pipelines.families import FAMILIES
from pipelines.limits import ComponentConfigs, ModelLimits, read_limits

log = logging.getLogger(__name__)

# the components whose configs set limits, and their config files
CONFIG_FILES = {"transformer": "config.json", "vae": "config.json", "scheduler": "scheduler_config.json"}


def model_limits(entry: ModelEntry) -> ModelLimits:
    """The limits of the model this catalog entry loads."""
    return _limits(entry.family, entry.path, entry.synthetic, entry.synthetic_scale or "full")


@functools.cache
def _limits(family: str, path: str, synthetic: str | None, scale: Scale) -> ModelLimits:
    configs = _synthetic_configs(synthetic, scale) if synthetic is not None else _checkpoint_configs(path)
    return read_limits(FAMILIES[family].limits, configs)


def _checkpoint_configs(path: str) -> ComponentConfigs:
    configs: dict[str, dict[str, Any]] = {}
    for component, name in CONFIG_FILES.items():
        file = _config_file(path, f"{component}/{name}")
        if file is None:
            log.info("model at %s: no %s/%s to read its limits from; requests are not checked", path, component, name)
            continue
        try:
            configs[component] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("model at %s: %s cannot be read (%s); requests are not checked against it", path, file, exc)
    return configs


def _config_file(path: str, relative: str) -> Path | None:
    """A file of the checkpoint directory, or of a repository id's snapshot in the hub cache."""
    local = Path(path) / relative
    if local.is_file():
        return local
    if Path(path).is_absolute():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(path, relative)
    except ValueError:  # not a repository id either
        return None
    return Path(cached) if isinstance(cached, str) else None


def _synthetic_configs(name: str, scale: Scale) -> ComponentConfigs:
    """The configs the synthetic model's components are built with, from meta skeletons (nothing allocated)."""
    from models.synthetic.registry import lookup
    from models.synthetic.skeleton import everything_on_meta

    recipe = lookup(name).recipe(scale)
    configs: dict[str, dict[str, Any]] = {}
    for component in CONFIG_FILES:
        if component in recipe.modules:
            with everything_on_meta():
                configs[component] = dict(recipe.modules[component]().config)
        elif component in recipe.others:
            configs[component] = dict(recipe.others[component]().config)
    return configs
