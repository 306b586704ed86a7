"""The catalog (TOML): models, LoRAs, styles, NPCs and defaults. Refused at start when malformed.

Relative paths resolve against the catalog file's folder (LoRAs against `defaults.loras_root` when set).
LoRA files must be `.safetensors`: pickle-based formats can execute code when loaded, so they are never read.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.speed import SpeedSettings
from models.synthetic.recipe import Scale
from models.synthetic.registry import SYNTHETIC_MODELS, lookup
from npc_video_client.contract import LORA_WEIGHT_RANGE, ArtStyle, QualityPreset, parse_lora_ref
from pipelines.families import FAMILIES
from pipelines.timing import DEFAULT_MOTION, Motion

Dtype = Literal["float32", "float16", "bfloat16"]
# "model": whole components move to the device when they run; "group": layer by layer (least memory).
Offload = Literal["none", "model", "group"]
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
# PEFT adapter names become module keys, which may not contain dots.
LORA_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class CatalogError(ValueError):
    """A malformed catalog: the message names the file, the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_lora_refs(refs: list[str]) -> list[str]:
    for ref in refs:
        parse_lora_ref(ref)
    return refs


class PresetOverride(_Strict):
    """Any preset value a model may override for one preset, plus LoRAs it adds (e.g. a distill LoRA).

    `model` hands the preset to another catalog model (e.g. LTX for realtime); that model's own override
    for the preset then applies.
    """

    model: str | None = None
    width: Annotated[int | None, Field(ge=16, le=2048)] = None
    height: Annotated[int | None, Field(ge=16, le=2048)] = None
    fps: Annotated[int | None, Field(ge=1, le=120)] = None
    steps: Annotated[int | None, Field(ge=1, le=500)] = None
    cfg: Annotated[float | None, Field(ge=0.0, le=50.0)] = None
    motion: Motion | None = None
    loras: list[str] = Field(default_factory=list)

    _refs = field_validator("loras")(_check_lora_refs)


def synthetic_path(name: str, scale: Scale | None) -> str:
    """What a synthetic entry reports as its path (logs, the result cache's fingerprint): name and scale."""
    return f"synthetic:{name}" + (f"@{scale}" if scale not in (None, "full") else "")


class ModelEntry(_Strict):
    """One loadable model: a diffusers-format directory (`path`) or a built-in synthetic model (`synthetic`, real
    architecture with random weights, at `synthetic_scale` "full" or "narrow"; its `path` then reads
    "synthetic:NAME[@narrow]"). `offload` lets a model larger than the device run at all (diffusers CPU offload,
    CUDA only); `speed` holds the settings of models.speed; `parallel` how a worker group splits it
    (models.parallel: "ulysses", "ring" or "ring:R")."""

    family: str
    path: str
    synthetic: str | None = None
    synthetic_scale: Scale | None = None
    dtype: Dtype = "bfloat16"
    offload: Offload = "none"
    motion: Motion = DEFAULT_MOTION  # frame timing (pipelines.timing); a preset override may change it
    speed: SpeedSettings = Field(default_factory=SpeedSettings)
    presets: dict[QualityPreset, PresetOverride] = Field(default_factory=dict)
    parallel: Annotated[str, Field(pattern=r"^(ulysses|ring|ring:[1-9][0-9]*)$")] = "ulysses"

    @model_validator(mode="before")
    @classmethod
    def _path_or_synthetic(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        path, synthetic = data.get("path"), data.get("synthetic")
        if synthetic is None:
            if path is None:
                raise ValueError(
                    "needs path (a diffusers-format directory) or synthetic (a synthetic model: "
                    f"{', '.join(sorted(SYNTHETIC_MODELS))})"
                )
            return data
        if not isinstance(synthetic, str):
            return data  # the field's own validation reports the type
        identity = synthetic_path(synthetic, data.get("synthetic_scale"))
        if path is not None and path != identity:
            raise ValueError(
                f"has both path ({path!r}) and synthetic ({synthetic!r}); give exactly one: path for a checkpoint "
                "directory, synthetic for a model with random weights"
            )
        return {**data, "path": identity}

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str) -> str:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
        return family

    @field_validator("synthetic")
    @classmethod
    def _known_synthetic(cls, synthetic: str | None) -> str | None:
        if synthetic is not None:
            lookup(synthetic)
        return synthetic

    @model_validator(mode="after")
    def _synthetic_matches_family(self) -> ModelEntry:
        if self.synthetic is None:
            if self.synthetic_scale is not None:
                raise ValueError("synthetic_scale is set but synthetic is not; it chooses a synthetic model's scale")
            return self
        family = lookup(self.synthetic).family
        if family != self.family:
            same = sorted(name for name, model in SYNTHETIC_MODELS.items() if model.family == self.family)
            raise ValueError(
                f"synthetic = {self.synthetic!r} is a model of family {family!r}, but family = {self.family!r}; "
                f"set family = {family!r}"
                + (f" or pick a synthetic model of family {self.family!r}: {', '.join(same)}" if same else "")
            )
        return self


class LoraEntry(_Strict):
    path: Path
    weight: Annotated[float, Field(ge=LORA_WEIGHT_RANGE[0], le=LORA_WEIGHT_RANGE[1])] = 1.0
    trigger: str | None = None

    @field_validator("path")
    @classmethod
    def _safetensors_only(cls, path: Path) -> Path:
        if path.suffix != ".safetensors":
            raise ValueError(
                f"LoRA file {str(path)!r} is not .safetensors; pickle formats (.ckpt, .pt, .bin) are refused "
                "because loading them can run code"
            )
        return path


class StylePreset(_Strict):
    """Per-preset choice of a style: `[styles.anime.presets.realtime] model = "ltx"`."""

    model: str


class StyleEntry(_Strict):
    model: str | None = None
    loras: list[str] = Field(default_factory=list)
    prompt_suffix: str | None = None
    presets: dict[QualityPreset, StylePreset] = Field(default_factory=dict)

    _refs = field_validator("loras")(_check_lora_refs)


class NpcEntry(_Strict):
    base_image: str


class Defaults(_Strict):
    model: str
    negative_prompt: str = "low quality, blurry"
    loras_root: Path | None = None


class Catalog(_Strict):
    defaults: Defaults
    models: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ModelEntry] = Field(min_length=1)
    loras: dict[Annotated[str, Field(pattern=LORA_NAME_PATTERN)], LoraEntry] = Field(default_factory=dict)
    styles: dict[ArtStyle, StyleEntry] = Field(default_factory=dict)
    npcs: dict[str, NpcEntry] = Field(default_factory=dict)
    source: Path | None = Field(default=None, exclude=True)


def _error(path: Path, key: str, reason: str) -> CatalogError:
    return CatalogError(f"catalog {path}: [{key}] {reason}")


def _resolve_path(value: str | Path, root: Path) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (root / candidate).resolve()


def _resolve_model_path(value: str, root: Path) -> str:
    """A directory (absolute, or relative to the catalog) or a hub id already in the local cache."""
    candidate = _resolve_path(value, root)
    if Path(value).is_absolute() or candidate.exists() or value.startswith("."):
        return str(candidate)
    return value


def _resolve_image_source(value: str, root: Path) -> str:
    """NPC base images may be URIs (data:, s3://, https://) or files relative to the catalog."""
    if value.startswith("data:") or "://" in value:
        return value
    return str(_resolve_path(value, root))


def _check_references(catalog: Catalog, path: Path) -> None:
    if catalog.defaults.model not in catalog.models:
        raise _error(path, "defaults.model", f"names model {catalog.defaults.model!r} which is not in [models]")
    lora_lists: list[tuple[str, list[str]]] = []
    for style_name, style in catalog.styles.items():
        key = f"styles.{style_name.value}"
        if style.model is not None and style.model not in catalog.models:
            raise _error(path, f"{key}.model", f"names model {style.model!r} which is not in [models]")
        lora_lists.append((f"{key}.loras", style.loras))
        for preset, choice in style.presets.items():
            if choice.model not in catalog.models:
                raise _error(
                    path,
                    f"{key}.presets.{preset.value}.model",
                    f"names model {choice.model!r} which is not in [models]",
                )
    for name, model in catalog.models.items():
        for preset, override in model.presets.items():
            key = f"models.{name}.presets.{preset.value}"
            lora_lists.append((f"{key}.loras", override.loras))
            target = override.model
            if target is not None and target not in catalog.models:
                raise _error(path, f"{key}.model", f"names model {target!r} which is not in [models]")
            if target is not None and catalog.models[target].presets.get(preset, PresetOverride()).model:
                raise _error(path, f"{key}.model", f"hands {preset.value} to {target!r}, which hands it on again")
    for key, refs in lora_lists:
        for ref in refs:
            lora_name, _ = parse_lora_ref(ref)
            if lora_name not in catalog.loras:
                raise _error(path, key, f"names LoRA {lora_name!r} which is not in [loras]")
    for name, lora in catalog.loras.items():
        if not lora.path.is_file():
            raise _error(path, f"loras.{name}.path", f"file {lora.path} does not exist")


def load_catalog(path: Path) -> Catalog:
    """Parse, validate and resolve a catalog file; raise CatalogError with file, key and reason."""
    path = path.expanduser().resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"catalog {path}: cannot be read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog {path}: not valid TOML: {exc}") from exc
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in first["loc"])
        raise _error(path, key, first["msg"]) from exc
    root = path.parent
    loras_root = _resolve_path(catalog.defaults.loras_root, root) if catalog.defaults.loras_root else root
    catalog = catalog.model_copy(
        update={
            "source": path,
            "models": {
                name: entry
                if entry.synthetic is not None
                else entry.model_copy(update={"path": _resolve_model_path(entry.path, root)})
                for name, entry in catalog.models.items()
            },
            "loras": {
                name: entry.model_copy(update={"path": _resolve_path(entry.path, loras_root)})
                for name, entry in catalog.loras.items()
            },
            "npcs": {
                name: entry.model_copy(update={"base_image": _resolve_image_source(entry.base_image, root)})
                for name, entry in catalog.npcs.items()
            },
        }
    )
    _check_references(catalog, path)
    return catalog


def check_model_paths(catalog: Catalog) -> None:
    """Refuse, before any job, a model whose weights are not there: every `path` must be a diffusers-format
    directory (with model_index.json) or the id of a Hugging Face repository already in the local cache (nothing
    is downloaded). Synthetic entries have no files. Called at worker start-up, not by load_catalog, so a catalog
    can be validated on a machine without the weights (CI, the deploy tests)."""
    source = catalog.source or Path("catalog")
    for name, entry in catalog.models.items():
        if entry.synthetic is not None:
            continue
        path = Path(entry.path)
        key = f"models.{name}.path"
        if path.is_absolute():
            if not path.is_dir():
                raise _error(
                    source,
                    key,
                    f"directory {path} does not exist; mount the weights there or fix the path "
                    "(relative paths resolve against the catalog's folder)",
                )
            if not (path / "model_index.json").is_file():
                raise _error(
                    source,
                    key,
                    f"{path} has no model_index.json; a diffusers-format checkpoint directory is expected "
                    "(e.g. from `hf download <repo> --local-dir DIR`)",
                )
        elif not _in_hub_cache(entry.path):
            raise _error(
                source,
                key,
                f"{entry.path!r} is neither a directory next to the catalog ({source.parent / entry.path} does not "
                "exist) nor a Hugging Face repository in the local cache (nothing is downloaded); "
                "give a directory of weights",
            )


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json")
    except ValueError:  # not a valid repository id at all
        return False
    return isinstance(found, str)
