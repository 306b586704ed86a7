"""The start-up check of model paths: weights that are not there are refused before any job, naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.catalog import CatalogError, check_model_paths, load_catalog


def catalog_with(tmp_path: Path, model_path: str, extra: str = "") -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(
        f'[defaults]\nmodel = "m"\n[models.m]\nfamily = "wan-i2v"\npath = "{model_path}"\n{extra}', encoding="utf-8"
    )
    return path


def test_a_diffusers_directory_passes(tmp_path, tiny_wan_dir):
    check_model_paths(load_catalog(catalog_with(tmp_path, str(tiny_wan_dir))))


def test_a_missing_directory_is_refused_with_file_key_and_path(tmp_path):
    path = catalog_with(tmp_path, "/srv/absent/wan")
    catalog = load_catalog(path)  # loading alone does not look at the weights (CI validates catalogs without them)
    with pytest.raises(CatalogError, match=re.escape(f"catalog {path}: [models.m.path] directory /srv/absent/wan")):
        check_model_paths(catalog)


def test_a_directory_without_model_index_is_refused(tmp_path):
    (tmp_path / "weights").mkdir()
    with pytest.raises(CatalogError, match=r"has no model_index\.json; a diffusers-format checkpoint directory"):
        check_model_paths(load_catalog(catalog_with(tmp_path, "weights")))


def test_a_hub_id_must_be_in_the_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    catalog = load_catalog(catalog_with(tmp_path, "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"))
    with pytest.raises(CatalogError, match="nor a Hugging Face repository in the local cache"):
        check_model_paths(catalog)
    repo = cache / "models--Wan-AI--Wan2.1-I2V-14B-480P-Diffusers"  # the cache layout `hf download` leaves
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "model_index.json").write_text("{}")
    check_model_paths(catalog)


def test_synthetic_entries_have_no_files_to_check(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(
        '[defaults]\nmodel = "s"\n[models.s]\nfamily = "wan-i2v"\nsynthetic = "wan21-i2v-14b-480p"\n', encoding="utf-8"
    )
    check_model_paths(load_catalog(path))
