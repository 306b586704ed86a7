"""The embedded demo catalog: built once under data_dir, loaded like any catalog, never rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from models.embedded import EMBEDDED_CATALOG, ensure_embedded_catalog


def snapshot(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("embedded") / "data"
    return data_dir, ensure_embedded_catalog(data_dir)


def test_builds_model_loras_portrait_and_catalog(built):
    data_dir, _ = built
    index = json.loads((data_dir / "tiny-wan-i2v" / "model_index.json").read_text())
    assert index["_class_name"] == "WanImageToVideoPipeline"
    for component in ("transformer", "vae", "text_encoder", "tokenizer", "image_encoder", "scheduler"):
        assert (data_dir / "tiny-wan-i2v" / component).is_dir(), component
    for name in ("tiny-glow", "tiny-comfy"):
        assert (data_dir / "loras" / f"{name}.safetensors").stat().st_size > 0
    with Image.open(data_dir / "npcs" / "alice.png") as portrait:
        assert portrait.size == (320, 240)
    assert (data_dir / "catalog.toml").read_text() == EMBEDDED_CATALOG
    # no scratch folders are left behind
    assert not [path for path in data_dir.rglob(".*")]


def test_catalog_is_loaded_and_resolved_under_data_dir(built):
    data_dir, catalog = built
    root = data_dir.resolve()
    assert catalog.source == root / "catalog.toml"
    assert catalog.defaults.model == "tiny-wan"
    assert catalog.models["tiny-wan"].path == str(root / "tiny-wan-i2v")
    assert catalog.models["tiny-wan"].family == "wan-i2v"
    assert catalog.loras["tiny-glow"].path == root / "loras" / "tiny-glow.safetensors"
    assert catalog.loras["tiny-glow"].trigger == "soft glow"
    assert catalog.styles["anime"].loras == ["tiny-glow"]
    assert catalog.npcs["alice"].base_image == str(root / "npcs" / "alice.png")


def test_second_call_does_not_rebuild(built):
    data_dir, first = built
    before = snapshot(data_dir)
    second = ensure_embedded_catalog(data_dir)
    assert snapshot(data_dir) == before
    assert second == first


def test_missing_pieces_are_rebuilt_and_the_rest_kept(built):
    data_dir, _ = built
    (data_dir / "npcs" / "alice.png").unlink()
    (data_dir / "catalog.toml").unlink()
    model_before = snapshot(data_dir / "tiny-wan-i2v")
    catalog = ensure_embedded_catalog(data_dir)
    assert (data_dir / "npcs" / "alice.png").is_file()
    assert (data_dir / "catalog.toml").read_text() == EMBEDDED_CATALOG
    assert snapshot(data_dir / "tiny-wan-i2v") == model_before
    assert catalog.defaults.model == "tiny-wan"


def test_an_edited_catalog_is_respected_not_overwritten(built):
    data_dir, _ = built
    edited = EMBEDDED_CATALOG.replace('negative_prompt = "low quality, blurry"', 'negative_prompt = "edited"')
    (data_dir / "catalog.toml").write_text(edited)
    assert ensure_embedded_catalog(data_dir).defaults.negative_prompt == "edited"
    assert (data_dir / "catalog.toml").read_text() == edited
