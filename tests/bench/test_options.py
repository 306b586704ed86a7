"""Settings over the catalog's speed tables, job overrides, and the derived catalog each (model, setting) runs on."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalogs import write_derived_catalog
from bench.jobs import job_params
from bench.options import BenchUsageError, Setting, check_settings, parse_overrides, parse_setting
from models.catalog import load_catalog
from models.speed import FirstBlockCache, SpeedSettings, TaylorSeerCache

TUNED = SpeedSettings(attention_backend="native", vae_tiling=True, cache=TaylorSeerCache(type="taylorseer"))


def test_a_named_setting_overrides_the_speed_table_key_by_key() -> None:
    setting = parse_setting("fbc:cache.type=first_block,cache.threshold=0.1,attention_backend=null,compile=true")
    assert setting.speed == {
        "cache.type": "first_block",
        "cache.threshold": 0.1,
        "attention_backend": None,
        "compile": True,
    }
    speed = setting.speed_for(TUNED)
    # a new cache type starts its options afresh; the rest of the table stays; null removes a key
    assert speed == SpeedSettings(
        vae_tiling=True, compile=True, cache=FirstBlockCache(type="first_block", threshold=0.1)
    )
    assert parse_setting("t:cache.cache_interval=2").speed_for(TUNED).cache == TaylorSeerCache(
        type="taylorseer", cache_interval=2
    )
    assert parse_setting("stock").speed_for(TUNED) == SpeedSettings()
    assert parse_setting("catalog").speed_for(TUNED) == TUNED


def test_a_setting_that_does_not_fit_a_models_table_is_refused_with_the_table() -> None:
    setting = parse_setting("thr:cache.threshold=0.2")  # an option with no cache type to belong to
    with pytest.raises(BenchUsageError, match=r"--setting thr: the speed table .* is invalid: speed\.cache"):
        setting.speed_for(SpeedSettings())
    assert check_settings([]) == [Setting("catalog")]


def test_overrides_are_json_scalars_several_per_flag() -> None:
    sample = job_params("data:image/png;base64,AA==", "fast", {})
    overrides = parse_overrides(["width=64 'prompt=a smiling face'", "cfg=1", "art_style=anime"], sample)
    assert overrides == {"width": 64, "prompt": "a smiling face", "cfg": 1, "art_style": "anime"}


def test_the_derived_catalog_makes_the_model_the_default_with_the_settings_speed(tmp_path: Path) -> None:
    source = tmp_path / "catalog.toml"
    source.write_text(
        """
[defaults]
model = "a"
loras_root = "loras"

[models.a]
family = "wan-i2v"
path = "model-a"
dtype = "float32"
[models.a.speed]
vae_tiling = true
[models.a.presets.realtime]
model = "b"
steps = 4

[models.b]
family = "ltx-i2v"
path = "model-b"
""",
        encoding="utf-8",
    )
    for folder in ("model-a", "model-b"):
        (tmp_path / folder).mkdir()
    catalog = load_catalog(source)
    written = write_derived_catalog(catalog, "b", parse_setting("c:compile=true"), tmp_path / "elsewhere")
    derived = load_catalog(written)
    assert derived.defaults.model == "b"
    assert derived.models["a"].path == str(tmp_path / "model-a")  # absolute: the file works from any folder
    assert derived.models["a"].presets == catalog.models["a"].presets  # hand-overs stay as written
    assert derived.models["a"].speed == SpeedSettings(vae_tiling=True, compile=True)
    assert derived.models["b"].speed == SpeedSettings(compile=True)
    assert written.read_text(encoding="utf-8").startswith(
        f"# npc-worker bench: model b, setting c, derived from {source}"
    )


def test_the_recorded_command_line_hides_a_redis_password() -> None:
    from bench.cli import VALUE_OPTIONS, _command

    def recorded(url: str) -> list[str]:
        values = dict.fromkeys(VALUE_OPTIONS) | {
            "redis_url": url,
            "override": None,
            "setting": None,
            "burst": 0,
            "warm": 0,
        }
        return _command(values)

    assert recorded("redis://:s3cret@cache:6379/0") == [
        "npc-worker",
        "bench",
        "--redis-url",
        "redis://:***@cache:6379/0",
    ]
    assert recorded("rediss://bench:pw@cache/1")[-1] == "rediss://bench:***@cache/1"
    assert recorded("redis://127.0.0.1:6379/0")[-1] == "redis://127.0.0.1:6379/0"
