"""resolve(): params + catalog + base image size -> the exact request that runs (no weights are loaded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models.catalog import Catalog, load_catalog
from models.resolution import resolve
from npc_video_client.contract import ErrorCode, NpcResponseParams
from npc_video_client.errors import JobError
from pipelines.families import FAMILIES
from pipelines.prompt import default_seed

SQUARE = (512, 512)


def make_catalog(tmp_path: Path, extra: str = "", defaults_extra: str = "", wan_a_extra: str = "") -> Catalog:
    """Two wan-i2v models (directories that hold no weights) and three empty LoRA files; `wan_a_extra` goes into
    [models.wan-a]."""
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
{wan_a_extra}

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
    [  # 3 s of Wan motion is 49 frames at 16 fps (48 -> 4k+1), resampled to a file of round(3 x fps) frames
        ("realtime", 256, 8, 24, 4, 1.5),
        ("fast", 512, 12, 36, 8, 3.0),
        ("balanced", 512, 24, 72, 15, 5.0),
        ("quality", 768, 30, 90, 25, 7.5),
    ],
)
def test_preset_table_values(catalog, preset, size, fps, frames, steps, cfg):
    request = resolve(job(quality_preset=preset), catalog, SQUARE)
    assert (request.width, request.height) == (size, size)
    assert (request.fps, request.num_frames, request.steps, request.cfg) == (fps, frames, steps, cfg)
    assert (request.generated_frames, request.generated_fps) == (49, 16)
    assert request.preset == preset
    assert request.model == "wan-a" and request.family == "wan-i2v"


def test_default_preset_is_fast_and_seed_is_the_npc_hash(catalog):
    request = resolve(job(), catalog, SQUARE)
    assert request.preset == "fast"
    assert (request.width, request.height, request.fps, request.steps) == (512, 512, 12, 8)
    assert request.seed == default_seed("npc-7") == 3283240500
    assert request.loras == ()
    assert request.duration_sec == pytest.approx(3.0, abs=1e-3)  # 36 frames at 12 fps


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
    assert (request.generated_frames, request.num_frames) == (49, 30)  # 49 frames at 16 fps: a 3 s file at 10 fps
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
    assert request.num_frames == request.generated_frames == 17  # at Wan's own 16 fps nothing is resampled


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


# -- frames from fps and duration: frame timing (native by default, stretch per model or preset) -----------


@pytest.mark.parametrize(
    ("fps", "duration", "generated", "frames"),
    [(12, 2.0, 33, 24), (8, 1.0, 17, 8), (16, 5.0, 81, 81), (8, 0.1, 5, 1), (30, 0.5, 9, 15), (24, 10.0, 161, 240)],
)
def test_native_timing_generates_at_16_fps_and_the_file_lasts_the_duration(catalog, fps, duration, generated, frames):
    request = resolve(job(fps=fps, duration=duration), catalog, SQUARE)
    assert (request.generated_frames, request.generated_fps) == (generated, 16)
    assert (generated - 1) % 4 == 0
    assert (request.num_frames, request.fps) == (frames, fps)
    # the duration asked for, to a whole output frame, never longer than the generated motion
    assert abs(Fraction(frames, fps) - Fraction(duration).limit_denominator(1000)) <= Fraction(1, fps)
    assert Fraction(frames, fps) <= Fraction(generated, 16) + Fraction(1, 2 * fps)
    assert request.duration_sec == pytest.approx(frames / fps, abs=1e-3)


@pytest.mark.parametrize(
    ("fps", "duration", "frames"),
    [(12, 2.0, 25), (8, 1.0, 9), (16, 5.0, 81), (8, 0.1, 5), (30, 0.5, 17), (24, 10.0, 241)],
)
def test_stretch_timing_generates_fps_x_duration_frames_on_the_wan_grid(tmp_path, fps, duration, frames):
    catalog = make_catalog(tmp_path, wan_a_extra='motion = "stretch"')
    request = resolve(job(fps=fps, duration=duration), catalog, SQUARE)
    assert request.num_frames == request.generated_frames == frames
    assert request.fps == request.generated_fps == fps
    assert (request.num_frames - 1) % 4 == 0
    assert request.duration_sec == pytest.approx(frames / fps, abs=1e-3)


def one_model_catalog(tmp_path: Path, family: str, motion: str) -> Catalog:
    (tmp_path / "weights").mkdir(exist_ok=True)
    path = tmp_path / f"{family}-{motion}.toml"
    text = f'[defaults]\nmodel = "m"\n\n[models.m]\nfamily = "{family}"\npath = "weights"\nmotion = "{motion}"\n'
    path.write_text(text, encoding="utf-8")
    return load_catalog(path)


@pytest.mark.parametrize(
    ("family", "motion", "fps", "generated_frames", "generated_fps", "frames"),
    [  # a 3 s job: native generates 3 s at the family's rate (snapped), stretch fps x 3 frames
        ("wan-i2v", "native", 8, 49, 16, 24),
        ("wan-i2v", "native", 30, 49, 16, 90),
        ("wan-i2v", "stretch", 8, 25, 8, 25),
        ("wan-i2v", "stretch", 30, 89, 30, 89),
        ("ltx-i2v", "native", 8, 73, 24, 24),
        ("ltx-i2v", "native", 30, 73, 24, 90),
        ("ltx-i2v", "stretch", 8, 25, 8, 25),
        ("ltx-i2v", "stretch", 30, 89, 30, 89),
        ("cogvideox-i2v", "native", 8, 49, 16, 24),
        ("cogvideox-i2v", "native", 30, 49, 16, 90),
        ("cogvideox-i2v", "stretch", 8, 25, 8, 25),
        ("cogvideox-i2v", "stretch", 30, 89, 30, 89),
        ("svd", "native", 8, 21, 7, 24),
        ("svd", "native", 30, 21, 7, 90),
        ("svd", "stretch", 8, 24, 8, 24),
        ("svd", "stretch", 30, 90, 30, 90),
    ],
)
def test_frame_timing_of_each_family(tmp_path, family, motion, fps, generated_frames, generated_fps, frames):
    request = resolve(job(fps=fps, duration=3.0), one_model_catalog(tmp_path, family, motion), SQUARE)
    assert (request.generated_frames, request.generated_fps) == (generated_frames, generated_fps)
    assert (request.num_frames, request.fps) == (frames, fps)
    kwargs = FAMILIES[family].call_kwargs(request, Image.new("RGB", (64, 64)))
    assert kwargs["num_frames"] == generated_frames


@pytest.mark.parametrize(("family", "key"), [("ltx-i2v", "frame_rate"), ("svd", "fps")])
def test_frame_rate_conditioning_is_the_rate_the_frames_are_generated_at(tmp_path, family, key):
    for motion, rate in (("native", FAMILIES[family].native_fps), ("stretch", 12)):
        request = resolve(job(fps=12), one_model_catalog(tmp_path, family, motion), SQUARE)
        assert FAMILIES[family].call_kwargs(request, Image.new("RGB", (64, 64)))[key] == rate


def test_a_preset_override_sets_the_timing_of_its_preset_only(tmp_path):
    catalog = make_catalog(tmp_path, '[models.wan-a.presets.realtime]\nmotion = "stretch"\n')
    realtime = resolve(job(quality_preset="realtime"), catalog, SQUARE)
    assert (realtime.generated_frames, realtime.generated_fps, realtime.num_frames, realtime.fps) == (25, 8, 25, 8)
    fast = resolve(job(quality_preset="fast"), catalog, SQUARE)
    assert (fast.generated_frames, fast.generated_fps, fast.num_frames, fast.fps) == (49, 16, 36, 12)


def test_a_preset_override_beats_the_models_timing(tmp_path):
    catalog = make_catalog(
        tmp_path, '[models.wan-a.presets.quality]\nmotion = "native"\n', wan_a_extra='motion = "stretch"'
    )
    assert resolve(job(quality_preset="quality"), catalog, SQUARE).generated_fps == 16
    assert resolve(job(quality_preset="balanced"), catalog, SQUARE).generated_fps == 24


def test_a_handed_over_preset_takes_the_target_models_timing(tmp_path):
    extra = '[models.wan-a.presets.realtime]\nmodel = "wan-b"\n[models.wan-b.presets.realtime]\nmotion = "stretch"\n'
    request = resolve(job(quality_preset="realtime"), make_catalog(tmp_path, extra), SQUARE)
    assert (request.model, request.generated_fps) == ("wan-b", 8)


@pytest.mark.parametrize(
    ("extra", "wan_a_extra", "key"),
    [
        ("", 'motion = "slow"', r"models\.wan-a\.motion"),
        ('[models.wan-a.presets.fast]\nmotion = "Native"\n', "", r"models\.wan-a\.presets\.fast\.motion"),
        ("", "motion = 1", r"models\.wan-a\.motion"),
    ],
)
def test_motion_must_be_native_or_stretch(tmp_path, extra, wan_a_extra, key):
    from models.catalog import CatalogError

    with pytest.raises(CatalogError, match=rf"\[{key}\] Input should be 'native' or 'stretch'"):
        make_catalog(tmp_path, extra, wan_a_extra=wan_a_extra)


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
    assert '"nope"' in caught.value.message
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


def test_native_and_stretch_videos_of_a_job_have_different_fingerprints(tmp_path):
    (tmp_path / "stretch").mkdir()
    native, stretch = make_catalog(tmp_path), make_catalog(tmp_path / "stretch", wan_a_extra='motion = "stretch"')
    assert resolve(job(), native, SQUARE).fingerprint("m", "img") != resolve(job(), stretch, SQUARE).fingerprint(
        "m", "img"
    )
    # at the model's own 16 fps both generate the same frames at the same rate and resample nothing: one video
    own_rate = job(fps=16)
    assert resolve(own_rate, native, SQUARE).fingerprint("m", "img") == resolve(own_rate, stretch, SQUARE).fingerprint(
        "m", "img"
    )


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
