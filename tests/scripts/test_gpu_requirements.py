"""scripts/gpu/requirements.py: which fallback wheels the GPU node needs, from the carried wheels' requirements
and the versions found on the path (here .venv's: typing-extensions 4.16)."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "requirements.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_requirements", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_requirements"] = module
    spec.loader.exec_module(module)
    return module


requirements = _load()


def _carried(site: Path, name: str, *requires: str) -> None:
    """A distribution installed under `site` as pip --target leaves it: NAME-VERSION.dist-info/METADATA."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _fallback(directory: Path, name: str, version: str) -> Path:
    directory.mkdir(exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    wheel.write_bytes(b"")
    return wheel


@pytest.fixture
def have() -> str:
    return metadata.version("typing-extensions")


def test_a_fallback_is_chosen_when_the_node_copy_is_too_old(tmp_path: Path, have: str) -> None:
    _carried(tmp_path / "site", "needs-new", "typing-extensions>=999.0")
    newer = _fallback(tmp_path / "fallback", "typing_extensions", "999.1")
    assert requirements.fallbacks_to_install(tmp_path / "site", tmp_path / "fallback") == [newer]
    gaps = requirements.carried_unmet(tmp_path / "site", requirements.installed_versions())
    assert [gap.describe() for gap in gaps] == [f"needs-new requires typing-extensions>=999.0: found {have}"]


def test_no_fallback_when_the_node_copy_is_new_enough_or_the_wheel_too_old(tmp_path: Path, have: str) -> None:
    _carried(tmp_path / "site", "satisfied", f"typing-extensions>={have}")
    _fallback(tmp_path / "fallback", "typing_extensions", "999.1")
    assert requirements.fallbacks_to_install(tmp_path / "site", tmp_path / "fallback") == []
    _carried(tmp_path / "site", "needs-newer", "typing-extensions>=1000")
    assert requirements.fallbacks_to_install(tmp_path / "site", tmp_path / "fallback") == []  # 999.1 fixes nothing


def test_missing_distributions_and_markers(tmp_path: Path) -> None:
    _carried(
        tmp_path / "site",
        "pkg",
        "no-such-distribution-anywhere>=1",
        'never-here; python_version < "3"',
        'optional-thing; extra == "docs"',
    )
    gaps = requirements.carried_unmet(tmp_path / "site", requirements.installed_versions())
    assert [gap.describe() for gap in gaps] == ["pkg requires no-such-distribution-anywhere>=1: not installed"]


def test_the_project_requirements_hold_in_the_venv() -> None:
    pyproject = SCRIPT.parents[2] / "pyproject.toml"
    assert requirements.project_unmet(pyproject, requirements.installed_versions()) == []


def test_a_dependency_left_out_on_purpose_is_not_reported_unmet(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "p"\ndependencies = ["no-such-distribution-anywhere>=1", "boto3>=99"]\n', encoding="utf-8"
    )
    versions = requirements.installed_versions()
    reported = [gap.describe() for gap in requirements.project_unmet(pyproject, versions, frozenset({"boto3"}))]
    assert reported == ["pyproject.toml requires no-such-distribution-anywhere>=1: not installed"]
