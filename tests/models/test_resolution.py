"""resolve(): params + catalog + base image size -> the exact request that runs (no weights are loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.catalog import Catalog, load_catalog
from models.resolution import resolve
from npc_video_client.contract import ErrorCode, NpcResponseParams
from npc_video_client.errors import JobError
from pipelines.prompt import default_seed

SQUARE = (512, 512)


def make_catalog(tmp_path: Path, extra: str = "", defaults_extra: str = "") -> Catalog:
    """Two wan-i2v models (directories that hold no weights) and three empty LoRA files."""
    for name in ("glow", "sparkle", "plain"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    (tmp_path / "model-a").mkdir(exist_ok=True)
    (tmp_path / "model-b").mkdir(exist_ok=True)
    text = f"""
[defaults]
model = "wan-a"
{defaults_extra}

[models.wan-a]
family = "wan-i2v"
path = "model-a"

[models.wan-b]
family = "wan-i2v"
path = "model-b"

[loras.glow]
path = "glow.safetensors"
weight = 0.8
trigger = "soft glow"

[loras.sparkle]
path = "sparkle.safetensors"
trigger = "sparkles"

[loras.plain]
path = "plain.safetensors"
weight = 0.5

{extra}
"""
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return load_catalog(path)


def job(**overrides: Any) -> NpcResponseParams:
    values: dict[str, Any] = {
        "npc_id": "npc-7",
        "npc_name": "Mira",
        "expression": "interested",
        "emotion": "pleased",
        "animation": "idle",
        "intensity": 0.5,
    }
    values.update(overrides)
    return NpcResponseParams.model_validate(values)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return make_catalog(tmp_path)


# -- the preset table -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "size", "fps", "frames", "steps", "cfg"),
    [
        ("realtime", 256, 8, 25, 4, 1.5),
        ("fast", 512, 12, 37, 8, 3.0),
        ("balanced", 512, 24, 73, 15, 5.0),
        ("quality", 768, 30, 89, 25, 7.5),
    ],
)
def test_preset_table_values(catalog, preset, size, fps, frames, steps, cfg):
    request = resolve(job(quality_preset=preset), catalog, SQUARE)
    assert (request.width, request.height) == (size, size)
    assert (request.fps, request.num_frames, request.steps, request.cfg) == (fps, frames, steps, cfg)
    assert request.preset == preset
    assert request.model == "wan-a" and request.family == "wan-i2v"


def test_default_preset_is_fast_and_seed_is_the_npc_hash(catalog):
    request = resolve(job(), catalog, SQUARE)
    assert request.preset == "fast"
    assert (request.width, request.height, request.fps, request.steps) == (512, 512, 12, 8)
    assert request.seed == default_seed("npc-7") == 3283240500
    assert request.loras == ()
    assert request.duration_sec == pytest.approx(37 / 12, abs=1e-3)


def test_explicit_seed_is_used(catalog):
    assert resolve(job(seed=0), catalog, SQUARE).seed == 0
    assert resolve(job(seed=2**40), catalog, SQUARE).seed == 2**40


# -- precedence: params > model override > table ----------------------------------------------------------

OVERRIDES = """
[models.wan-a.presets.fast]
width = 320
height = 320
fps = 10
steps = 5
cfg = 0.0
loras = ["plain"]
"""


def test_model_override_beats_the_table(tmp_path):
    catalog = make_catalog(tmp_path, OVERRIDES)
    request = resolve(job(), catalog, SQUARE)
    assert (request.width, request.height) == (320, 320)
    assert (request.fps, request.steps) == (10, 5)
    assert request.cfg == 0.0  # a zero override is still an override
    assert request.num_frames == 29  # round(10 * 3.0) = 30 -> 4k+1
    assert [(lora.name, lora.weight) for lora in request.loras] == [("plain", 0.5)]


def test_override_applies_to_its_preset_only(tmp_path):
    catalog = make_catalog(tmp_path, OVERRIDES)
    request = resolve(job(quality_preset="balanced"), catalog, SQUARE)
    assert (request.width, request.fps, request.steps, request.cfg) == (512, 24, 15, 5.0)
    assert request.loras == ()


def test_explicit_params_beat_the_model_override(tmp_path):
    catalog = make_catalog(tmp_path, OVERRIDES)
    request = resolve(job(width=128, height=96, fps=16, steps=7, cfg=2.0, duration=1.0), catalog, SQUARE)
    assert (request.width, request.height, request.fps, request.steps, request.cfg) == (128, 96, 16, 7, 2.0)
    assert request.num_frames == 17


def test_explicit_zero_cfg_beats_the_table(catalog):
    assert resolve(job(cfg=0.0), catalog, SQUARE).cfg == 0.0


def test_override_of_another_model_does_not_apply(tmp_path):
    catalog = make_catalog(tmp_path, "[models.wan-b.presets.fast]\nsteps = 2\n")
    assert resolve(job(), catalog, SQUARE).steps == 8


# -- size: aspect ratio, one side, snapping ---------------------------------------------------------------


def test_aspect_follows_the_base_image_at_the_preset_area(catalog):
    request = resolve(job(), catalog, (1920, 1080))
    assert (request.width, request.height) == (688, 384)
    assert request.width % 16 == 0 and request.height % 16 == 0
    assert request.width * request.height == pytest.approx(512 * 512, rel=0.05)
    assert request.width / request.height == pytest.approx(16 / 9, rel=0.05)


def test_portrait_image_gives_a_portrait_video(catalog):
    request = resolve(job(quality_preset="realtime"), catalog, (480, 960))
    assert request.height > request.width
    assert request.width * request.height == pytest.approx(256 * 256, rel=0.1)


def test_override_area_follows_the_image_aspect(tmp_path):
    catalog = make_catalog(tmp_path, OVERRIDES)
    request = resolve(job(), catalog, (1000, 500))
    assert request.width / request.height == pytest.approx(2.0, rel=0.1)
    assert request.width * request.height == pytest.approx(320 * 320, rel=0.1)


def test_only_width_given_height_follows_the_aspect(catalog):
    request = resolve(job(width=300), catalog, (1920, 1080))
    assert (request.width, request.height) == (304, 176)  # 300 -> 304, 300 / (16/9) = 168.75 -> 176


def test_only_height_given_width_follows_the_aspect(catalog):
    request = resolve(job(height=410), catalog, (1920, 1080))
    assert (request.width, request.height) == (736, 416)  # 410 -> 416, 410 * 16/9 = 728.9 -> 736


def test_explicit_size_is_snapped_and_reported(catalog):
    request = resolve(job(width=100, height=70), catalog, (1920, 1080))
    assert (request.width, request.height) == (96, 64)  # the image aspect does not matter then


def test_tiny_explicit_size_snaps_up_to_one_multiple(catalog):
    request = resolve(job(width=16, height=17), catalog, SQUARE)
    assert (request.width, request.height) == (16, 16)


def test_derived_side_of_an_extreme_aspect_image_stays_bounded(catalog):
    request = resolve(job(height=2048), catalog, (2000, 20))
    assert request.width <= 2048


# -- frames from fps and duration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "duration", "frames"),
    [(12, 2.0, 25), (8, 1.0, 9), (16, 5.0, 81), (8, 0.1, 5), (30, 0.5, 17), (24, 10.0, 241)],
)
def test_duration_and_fps_give_frames_on_the_wan_grid(catalog, fps, duration, frames):
    request = resolve(job(fps=fps, duration=duration), catalog, SQUARE)
    assert request.num_frames == frames
    assert (request.num_frames - 1) % 4 == 0
    assert request.duration_sec == pytest.approx(frames / fps, abs=1e-3)


# -- styles, LoRAs, prompt --------------------------------------------------------------------------------

STYLES = """
[styles.anime]
model = "wan-b"
loras = ["glow:0.7", "sparkle"]
prompt_suffix = "anime style, cel shading"

[styles.semi-realistic]
prompt_suffix = "painterly"
"""


def test_style_picks_model_loras_and_suffix(tmp_path):
    catalog = make_catalog(tmp_path, STYLES)
    request = resolve(job(art_style="anime"), catalog, SQUARE)
    assert request.model == "wan-b"
    assert [(lora.name, lora.weight) for lora in request.loras] == [("glow", 0.7), ("sparkle", 1.0)]
    assert request.loras[0].path == (tmp_path / "glow.safetensors").resolve()
    assert request.prompt == (
        "Mira, moderately interested, pleased expression, anime style, cel shading, soft glow, sparkles"
    )


def test_style_without_model_keeps_the_default_model(tmp_path):
    catalog = make_catalog(tmp_path, STYLES)
    request = resolve(job(art_style="semi-realistic"), catalog, SQUARE)
    assert request.model == "wan-a"
    assert request.prompt == "Mira, moderately interested, pleased expression, painterly"


def test_missing_style_falls_back_to_the_defaults(tmp_path):
    catalog = make_catalog(tmp_path, STYLES)
    request = resolve(job(art_style="realistic"), catalog, SQUARE)
    assert request.model == "wan-a"
    assert request.loras == ()
    assert request.prompt == "Mira, moderately interested, pleased expression"


def test_job_lora_weight_overrides_the_style_weight(tmp_path):
    catalog = make_catalog(tmp_path, STYLES)
    request = resolve(job(art_style="anime", loras=["glow:0.2"]), catalog, SQUARE)
    weights = {lora.name: lora.weight for lora in request.loras}
    assert weights == {"glow": 0.2, "sparkle": 1.0}
    assert [lora.name for lora in request.loras].count("glow") == 1


def test_job_lora_without_weight_uses_the_catalog_weight(catalog):
    request = resolve(job(loras=["glow", "sparkle:-1.5"]), catalog, SQUARE)
    assert [(lora.name, lora.weight) for lora in request.loras] == [("glow", 0.8), ("sparkle", -1.5)]
    assert request.prompt.endswith(", soft glow, sparkles")


def test_zero_weight_lora_adds_no_trigger(catalog):
    request = resolve(job(loras=["glow:0", "sparkle"]), catalog, SQUARE)
    assert "soft glow" not in request.prompt
    assert request.prompt.endswith(", sparkles")


def test_lora_without_trigger_adds_nothing(catalog):
    request = resolve(job(loras=["plain"]), catalog, SQUARE)
    assert request.prompt == "Mira, moderately interested, pleased expression"


def test_unknown_lora_is_unknown_lora_listing_known_names(catalog):
    with pytest.raises(JobError) as caught:
        resolve(job(loras=["glow", "nope:0.5"]), catalog, SQUARE)
    assert caught.value.code == ErrorCode.UNKNOWN_LORA
    assert not caught.value.retryable
    assert "'nope'" in caught.value.message
    assert "glow, plain, sparkle" in caught.value.message


def test_prompt_replaces_npc_name_as_the_subject(catalog):
    request = resolve(job(prompt="a knight in silver armor", animation="wave", intensity=0.8), catalog, SQUARE)
    assert request.prompt == "a knight in silver armor, very interested, pleased expression, wave animation"
    assert "Mira" not in request.prompt


def test_negative_prompt_defaults(tmp_path):
    assert resolve(job(), make_catalog(tmp_path), SQUARE).negative_prompt == "low quality, blurry"
    custom = make_catalog(tmp_path, defaults_extra='negative_prompt = "watermark, text"')
    assert resolve(job(), custom, SQUARE).negative_prompt == "watermark, text"
    assert resolve(job(negative_prompt="extra limbs"), custom, SQUARE).negative_prompt == "extra limbs"


# -- the fingerprint (content-addressed storage key) -------------------------------------------------------


def test_fingerprint_is_stable_and_depends_on_what_changes_the_video(catalog):
    base = resolve(job(), catalog, SQUARE)
    same = resolve(job(), catalog, SQUARE)
    assert base.fingerprint("m", "img") == same.fingerprint("m", "img")
    assert len(base.fingerprint("m", "img")) == 64
    others = {
        resolve(job(seed=1), catalog, SQUARE).fingerprint("m", "img"),
        resolve(job(intensity=0.9), catalog, SQUARE).fingerprint("m", "img"),
        resolve(job(loras=["glow"]), catalog, SQUARE).fingerprint("m", "img"),
        base.fingerprint("other-model", "img"),
        base.fingerprint("m", "other-image"),
    }
    assert base.fingerprint("m", "img") not in others
    assert len(others) == 5


# -- per-preset model choice ------------------------------------------------------------------------------


def test_style_per_preset_model_beats_the_style_model(tmp_path):
    catalog = make_catalog(
        tmp_path,
        extra='[styles.anime]\nmodel = "wan-a"\n[styles.anime.presets.realtime]\nmodel = "wan-b"\n',
    )
    assert resolve(job(art_style="anime", quality_preset="realtime"), catalog, SQUARE).model == "wan-b"
    assert resolve(job(art_style="anime", quality_preset="fast"), catalog, SQUARE).model == "wan-a"


def test_model_per_preset_hand_over_applies_the_target_models_override(tmp_path):
    catalog = make_catalog(
        tmp_path,
        extra='[models.wan-a.presets.realtime]\nmodel = "wan-b"\n[models.wan-b.presets.realtime]\nsteps = 3\n',
    )
    realtime = resolve(job(quality_preset="realtime"), catalog, SQUARE)
    assert (realtime.model, realtime.steps) == ("wan-b", 3)
    assert resolve(job(quality_preset="quality"), catalog, SQUARE).model == "wan-a"


def test_per_preset_model_naming_an_unknown_model_is_refused(tmp_path):
    from models.catalog import CatalogError

    with pytest.raises(CatalogError, match=r"styles\.anime\.presets\.fast\.model.*'nope'"):
        make_catalog(tmp_path, extra='[styles.anime.presets.fast]\nmodel = "nope"\n')


def test_chained_hand_over_is_refused(tmp_path):
    from models.catalog import CatalogError

    chain = '[models.wan-a.presets.fast]\nmodel = "wan-b"\n[models.wan-b.presets.fast]\nmodel = "wan-a"\n'
    with pytest.raises(CatalogError, match="hands it on again"):
        make_catalog(tmp_path, extra=chain)
