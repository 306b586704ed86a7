"""What the bench can change per preset: a setting's per-preset overrides (a step-distilled configuration on every
preset of every model) and job params for one preset's jobs only (`PRESET:field=value`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalogs import derived_catalog
from bench.jobs import envelope, job_params
from bench.options import BenchUsageError, parse_overrides, parse_setting
from models.catalog import PresetOverride, load_catalog
from npc_video_client.contract import QualityPreset


def test_a_setting_can_override_every_preset_of_every_model(tmp_path: Path, bench_catalog: Path) -> None:
    setting = parse_setting("distilled:preset.steps=4,preset.cfg=1.0,preset.loras=glow:0.5+sparkle,vae_tiling=true")
    assert setting.presets == {"steps": 4, "cfg": 1.0, "loras": ["glow:0.5", "sparkle"]}
    assert setting.speed == {"vae_tiling": True}
    assert setting.describe()["preset_overrides"] == setting.presets
    catalog = load_catalog(bench_catalog)
    document = derived_catalog(catalog, "tiny-wan", setting)
    for preset in QualityPreset:
        override = PresetOverride.model_validate(document["models"]["tiny-wan"]["presets"][preset.value])
        assert (override.steps, override.cfg, override.loras) == (4, 1.0, ["glow:0.5", "sparkle"])
    with pytest.raises(BenchUsageError, match=r"preset\.loras names nope, not in the catalog's \[loras\]"):
        derived_catalog(catalog, "tiny-wan", parse_setting("x:preset.loras=nope"))
    with pytest.raises(BenchUsageError, match=r"--setting x: the preset override .* is invalid: preset\.steps"):
        derived_catalog(catalog, "tiny-wan", parse_setting("x:preset.steps=0"))
    with pytest.raises(BenchUsageError, match=r"preset\.steps"):  # the usage line lists the preset keys
        parse_setting("x:preset.model=other")


def test_an_override_can_be_scoped_to_one_preset() -> None:
    sample = job_params("data:image/png;base64,AA==", "fast", {})
    overrides = parse_overrides(["width=64 steps=2", "quality:width=768 quality:height=768 balanced:cfg=5.0"], sample)
    assert overrides == {"width": 64, "steps": 2, "quality:width": 768, "quality:height": 768, "balanced:cfg": 5.0}
    quality = envelope("j", "data:,", QualityPreset.QUALITY, 3, overrides)["params"]
    assert (quality["width"], quality["height"], quality["steps"], quality["seed"]) == (768, 768, 2, 3)
    assert "cfg" not in quality
    fast = envelope("j", "data:,", QualityPreset.FAST, 0, overrides)["params"]
    assert (fast["width"], fast.get("height"), fast.get("cfg")) == (64, None, None)
    assert envelope("j", "data:,", QualityPreset.BALANCED, 0, overrides)["params"]["cfg"] == 5.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fastest:width=64", "unknown preset 'fastest'"),
        (":width=64", "is not key=value"),
        ("quality:seed=1", "--override seed is not allowed"),
        ("quality:colour=red", "unknown --override key 'colour'"),
        ("quality:width=8", "params.width"),  # validated for the preset it applies to
    ],
)
def test_a_bad_scoped_override_is_refused(value: str, message: str) -> None:
    with pytest.raises(BenchUsageError, match=message):
        parse_overrides([value], job_params("data:,", "fast", {}))
