"""The catalog TOML: loading, path resolution, and refusal of every malformed case with file, key and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.catalog import CatalogError, load_catalog
from npc_video_client.contract import QualityPreset
from pipelines.families import FAMILIES

BASE = """
[defaults]
model = "wan"

[models.wan]
family = "wan-i2v"
path = "{model}"
dtype = "float32"

[loras.glow]
path = "{glow}"
weight = 0.8
trigger = "soft glow"
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "weights" / "wan"
    model.mkdir(parents=True)
    glow = tmp_path / "glow.safetensors"
    glow.write_bytes(b"")
    return {"model": model, "glow": glow}


def write(tmp_path: Path, text: str, name: str = "catalog.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def base_text(files: dict[str, Path], extra: str = "") -> str:
    return BASE.format(model=files["model"], glow=files["glow"]) + "\n" + extra


def refused(path: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"catalog {path.resolve()}: "), message
    return message


# -- valid catalogs ---------------------------------------------------------------------------------------


def test_valid_catalog_loads(tmp_path, files):
    extra = """
[models.wan.presets.realtime]
steps = 4
cfg = 1.0
loras = ["glow:0.5"]

[styles.anime]
model = "wan"
loras = ["glow"]
prompt_suffix = "anime style"

[npcs.alice]
base_image = "data:image/png;base64,AAAA"
"""
    catalog = load_catalog(write(tmp_path, base_text(files, extra)))
    assert catalog.defaults.model == "wan"
    assert catalog.defaults.negative_prompt == "low quality, blurry"
    model = catalog.models["wan"]
    assert (model.family, model.dtype, model.path) == ("wan-i2v", "float32", str(files["model"]))
    override = model.presets[QualityPreset.REALTIME]
    assert (override.steps, override.cfg, override.loras, override.width) == (4, 1.0, ["glow:0.5"], None)
    assert catalog.loras["glow"].weight == 0.8 and catalog.loras["glow"].trigger == "soft glow"
    assert catalog.styles["anime"].prompt_suffix == "anime style"
    assert catalog.npcs["alice"].base_image == "data:image/png;base64,AAAA"
    assert catalog.source == (tmp_path / "catalog.toml").resolve()


def test_defaults_of_optional_keys(tmp_path, files):
    text = f'[defaults]\nmodel = "m"\n[models.m]\nfamily = "wan-i2v"\npath = "{files["model"]}"\n'
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.models["m"].dtype == "bfloat16"
    assert catalog.models["m"].presets == {}
    assert catalog.loras == {} and catalog.styles == {} and catalog.npcs == {}


def test_relative_paths_resolve_against_the_catalog_file(tmp_path, files):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "models" / "wan").mkdir(parents=True)
    (folder / "glow.safetensors").write_bytes(b"")
    text = """
[defaults]
model = "wan"
[models.wan]
family = "wan-i2v"
path = "models/wan"
[models.dotted]
family = "wan-i2v"
path = "./not-built-yet"
[models.hub]
family = "wan-i2v"
path = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
[loras.glow]
path = "glow.safetensors"
[npcs.alice]
base_image = "npcs/alice.png"
[npcs.remote]
base_image = "s3://bucket/bob.png"
[npcs.web]
base_image = "https://example.com/carol.png"
"""
    catalog = load_catalog(write(folder, text))
    assert catalog.models["wan"].path == str((folder / "models" / "wan").resolve())
    assert catalog.models["dotted"].path == str((folder / "not-built-yet").resolve())
    assert catalog.models["hub"].path == "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"  # a hub id stays as it is
    assert catalog.loras["glow"].path == (folder / "glow.safetensors").resolve()
    assert catalog.npcs["alice"].base_image == str((folder / "npcs" / "alice.png").resolve())
    assert catalog.npcs["remote"].base_image == "s3://bucket/bob.png"
    assert catalog.npcs["web"].base_image == "https://example.com/carol.png"


def test_loras_resolve_against_the_loras_root(tmp_path, files):
    (tmp_path / "lora-files").mkdir()
    (tmp_path / "lora-files" / "glow.safetensors").write_bytes(b"")
    text = f"""
[defaults]
model = "wan"
loras_root = "lora-files"
[models.wan]
family = "wan-i2v"
path = "{files["model"]}"
[loras.glow]
path = "glow.safetensors"
[loras.absolute]
path = "{files["glow"]}"
"""
    catalog = load_catalog(write(tmp_path, text))
    assert catalog.loras["glow"].path == (tmp_path / "lora-files" / "glow.safetensors").resolve()
    assert catalog.loras["absolute"].path == files["glow"]


def test_lora_relative_to_the_catalog_is_missing_when_a_loras_root_is_set(tmp_path, files):
    text = '[defaults]\nmodel = "wan"\nloras_root = "elsewhere"\n'
    text += f'[models.wan]\nfamily = "wan-i2v"\npath = "{files["model"]}"\n'
    text += '[loras.glow]\npath = "glow.safetensors"\n'
    message = refused(write(tmp_path, text))
    assert "[loras.glow.path]" in message and "does not exist" in message
    assert str(tmp_path / "elsewhere" / "glow.safetensors") in message


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_known_family_is_accepted(tmp_path, files, family):
    text = base_text(files).replace('family = "wan-i2v"', f'family = "{family}"')
    assert load_catalog(write(tmp_path, text)).models["wan"].family == family


def test_synthetic_model_replaces_path_and_reports_name_and_scale_as_its_path(tmp_path, files):
    extra = """
[models.big]
family = "wan22-i2v"
synthetic = "wan22-i2v-a14b"

[models.small]
family = "ltx-i2v"
synthetic = "ltx-video-2b"
synthetic_scale = "narrow"
dtype = "float32"
"""
    models = load_catalog(write(tmp_path, base_text(files, extra))).models
    big, small = models["big"], models["small"]
    assert (big.synthetic, big.synthetic_scale, big.path) == ("wan22-i2v-a14b", None, "synthetic:wan22-i2v-a14b")
    assert (small.synthetic, small.synthetic_scale, small.path) == (
        "ltx-video-2b",
        "narrow",
        "synthetic:ltx-video-2b@narrow",
    )
    assert models["wan"].synthetic is None and models["wan"].path == str(files["model"])


# -- refusals: file, key and reason ----------------------------------------------------------------------


def test_missing_file_is_refused(tmp_path):
    message = refused(tmp_path / "absent.toml")
    assert "cannot be read" in message


def test_bad_toml_is_refused(tmp_path, files):
    message = refused(write(tmp_path, base_text(files) + "\n[models.wan\nfamily = 1\n"))
    assert "not valid TOML" in message
    assert re.search(r"line \d+", message)


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ('[models.other]\nfamily = "sora"\npath = "x"\n', "models.other.family", "unknown family 'sora'"),
        ('[models.other]\nfamily = "wan-i2v"\npath = "x"\ncolour = "red"\n', "models.other.colour", "Extra inputs"),
        ("[extras]\nanything = 1\n", "extras", "Extra inputs"),
        ('[styles.anime]\nmodel = "wan"\nsuffix = "x"\n', "styles.anime.suffix", "Extra inputs"),
        ('[npcs.alice]\nbase_image = "a.png"\nage = 3\n', "npcs.alice.age", "Extra inputs"),
        ("[models.wan.presets.fast]\nframes = 10\n", "models.wan.presets.fast.frames", "Extra inputs"),
        ("[models.wan.presets.ultra]\nsteps = 10\n", "models.wan.presets.ultra", "'realtime', 'fast'"),
        ("[models.wan.presets.fast]\nsteps = 0\n", "models.wan.presets.fast.steps", "greater than or equal to 1"),
        ('[models.other]\nfamily = "wan-i2v"\npath = "x"\ndtype = "int8"\n', "models.other.dtype", "'float32'"),
        (
            '[models.other]\nfamily = "wan-i2v"\n',
            "models.other",
            "needs path (a diffusers-format directory) or synthetic",
        ),
        (
            '[models.other]\nfamily = "wan-i2v"\nsynthetic = "wan-9000"\n',
            "models.other.synthetic",
            "unknown synthetic model 'wan-9000'; known: cogvideox-5b-i2v,",
        ),
        (
            '[models.other]\nfamily = "wan-i2v"\npath = "x"\nsynthetic = "wan21-i2v-14b-480p"\n',
            "models.other",
            "has both path ('x') and synthetic ('wan21-i2v-14b-480p'); give exactly one",
        ),
        (
            '[models.other]\nfamily = "svd"\nsynthetic = "wan22-i2v-a14b"\n',
            "models.other",
            "synthetic = 'wan22-i2v-a14b' is a model of family 'wan22-i2v', but family = 'svd'; set family = "
            "'wan22-i2v' or pick a synthetic model of family 'svd': svd-xt",
        ),
        (
            '[models.other]\nfamily = "wan-i2v"\nsynthetic = "wan21-i2v-14b-480p"\nsynthetic_scale = "tiny"\n',
            "models.other.synthetic_scale",
            "'full' or 'narrow'",
        ),
        (
            '[models.other]\nfamily = "wan-i2v"\npath = "x"\nsynthetic_scale = "narrow"\n',
            "models.other",
            "synthetic_scale is set but synthetic is not",
        ),
        ('[loras.heavy]\npath = "{glow}"\nweight = 2.5\n', "loras.heavy.weight", "less than or equal to 2"),
        ('[loras.neg]\npath = "{glow}"\nweight = -3\n', "loras.neg.weight", "greater than or equal to -2"),
        ('[loras."a.b"]\npath = "{glow}"\n', "loras.a.b", "should match pattern"),
        ('[loras.evil]\npath = "evil.ckpt"\n', "loras.evil.path", "not .safetensors"),
        ('[loras.evil]\npath = "evil.pt"\n', "loras.evil.path", "not .safetensors"),
        ('[loras.evil]\npath = "evil.bin"\n', "loras.evil.path", "not .safetensors"),
        ('[loras.evil]\npath = "{glow}"\nstrength = 1\n', "loras.evil.strength", "Extra inputs"),
        ('[styles.anime]\nloras = ["glow:9"]\n', "styles.anime.loras", "outside -2.0..2.0"),
        ("[styles.anime]\nloras = [3]\n", "styles.anime.loras", "valid string"),
    ],
)
def test_malformed_entries_are_refused_naming_key_and_reason(tmp_path, files, extra, key, reason):
    message = refused(write(tmp_path, base_text(files, extra.format(glow=files["glow"]))))
    assert f"[{key}" in message, message
    assert reason in message, message


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth", ".SAFETENSORS"])
def test_pickle_lora_files_are_never_accepted_even_when_present(tmp_path, files, suffix):
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(b"\x80\x04pickle")
    message = refused(write(tmp_path, base_text(files, f'[loras.evil]\npath = "{evil}"\n')))
    assert "[loras.evil.path]" in message
    assert "not .safetensors" in message and "can run code" in message


def test_missing_defaults_is_refused(tmp_path, files):
    text = base_text(files).replace('[defaults]\nmodel = "wan"\n', "")
    message = refused(write(tmp_path, text))
    assert "[defaults]" in message and "Field required" in message


def test_catalog_without_models_is_refused(tmp_path):
    message = refused(write(tmp_path, '[defaults]\nmodel = "wan"\n'))
    assert "[models]" in message and "Field required" in message


def test_defaults_model_not_in_models_is_refused(tmp_path, files):
    text = base_text(files).replace('model = "wan"', 'model = "ghost"', 1)
    message = refused(write(tmp_path, text))
    assert "[defaults.model]" in message and "'ghost'" in message and "not in [models]" in message


def test_style_naming_an_unknown_model_is_refused(tmp_path, files):
    message = refused(write(tmp_path, base_text(files, '[styles.anime]\nmodel = "ghost"\n')))
    assert "[styles.anime.model]" in message and "'ghost'" in message and "not in [models]" in message


def test_style_naming_an_unknown_lora_is_refused(tmp_path, files):
    message = refused(write(tmp_path, base_text(files, '[styles.anime]\nloras = ["glow", "nope:0.5"]\n')))
    assert "[styles.anime.loras]" in message and "'nope'" in message and "not in [loras]" in message


def test_preset_override_naming_an_unknown_lora_is_refused(tmp_path, files):
    message = refused(write(tmp_path, base_text(files, '[models.wan.presets.realtime]\nloras = ["distill"]\n')))
    assert "[models.wan.presets.realtime.loras]" in message and "'distill'" in message


def test_missing_lora_file_is_refused(tmp_path, files):
    message = refused(write(tmp_path, base_text(files, '[loras.gone]\npath = "gone.safetensors"\n')))
    assert "[loras.gone.path]" in message
    assert f"file {tmp_path / 'gone.safetensors'} does not exist" in message


def test_lora_path_that_is_a_directory_is_refused(tmp_path, files):
    (tmp_path / "dir.safetensors").mkdir()
    message = refused(write(tmp_path, base_text(files, '[loras.dir]\npath = "dir.safetensors"\n')))
    assert "[loras.dir.path]" in message and "does not exist" in message
