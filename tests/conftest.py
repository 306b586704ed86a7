"""Session fixtures: tiny real checkpoints (narrow synthetic models) and LoRAs built once, and a factory of job runners
on them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.models import write_lora, write_model
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


ModelDirs = Callable[..., Path]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> ModelDirs:
    """`model_dir(family, seed=0)`: the family's narrow model (tests.support.models), written once per session.
    Tests only read these directories; one that edits a checkpoint writes its own copy."""
    root = tmp_path_factory.mktemp("models")
    written: dict[tuple[str, int], Path] = {}

    def get(family: str, seed: int = 0) -> Path:
        if (family, seed) not in written:
            written[family, seed] = write_model(family, root / f"{family}-seed{seed}", seed=seed)
        return written[family, seed]

    return get


@pytest.fixture(scope="session")
def tiny_wan_dir(model_dir: ModelDirs) -> Path:
    return model_dir("wan-i2v")


@pytest.fixture(scope="session")
def tiny_loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("loras")
    loras = {
        "glow": directory / "glow.safetensors",
        "sparkle": directory / "sparkle.safetensors",
        "comfy": directory / "comfy.safetensors",
    }
    write_lora(loras["glow"], seed=1)
    write_lora(loras["sparkle"], seed=3)
    write_lora(loras["comfy"], seed=2, lora_format="kohya")
    return loras


@pytest.fixture
def catalog_path(tmp_path: Path, tiny_wan_dir: Path, tiny_loras: dict[str, Path]) -> Path:
    return write_catalog(tmp_path, tiny_catalog_text(tiny_wan_dir, tiny_loras))


RunnerFactory = Callable[..., Runtime]


@pytest.fixture
def make_runner(tmp_path: Path, catalog_path: Path) -> RunnerFactory:
    """`make_runner(catalog_extra="...", **settings)`: a Runtime on the tiny catalog, storage under tmp_path."""

    def factory(catalog_extra: str = "", **overrides: Any) -> Runtime:
        path = catalog_path
        if catalog_extra:
            path.write_text(path.read_text(encoding="utf-8") + "\n" + catalog_extra, encoding="utf-8")
        values: dict[str, Any] = {
            "catalog": path,
            "device": "cpu",
            "storage_url": f"file://{tmp_path / 'outputs'}",
            "data_dir": tmp_path / "data",
        }
        values.update(overrides)
        return build_runtime(Settings(**values))

    return factory


@pytest.fixture
def runner(make_runner: RunnerFactory) -> Runtime:
    return make_runner()
