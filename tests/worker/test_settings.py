"""Settings: NPC_WORKER_* environment, CLI-style overrides, validation, frozen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No NPC_WORKER_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("NPC_WORKER_"):
            monkeypatch.delenv(name)


def test_defaults_without_environment():
    settings = Settings()
    assert settings.catalog is None
    assert settings.device == "auto"
    assert settings.storage_url == "file://./outputs"
    assert settings.input_roots == []
    assert settings.max_attempts == 3
    assert settings.prefix == "npc"
    assert settings.result_ttl_s == 7 * 24 * 3600
    assert settings.events_maxlen == 100_000


def test_environment_variables_use_the_npc_worker_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("NPC_WORKER_DEVICE", "cuda:1")
    monkeypatch.setenv("NPC_WORKER_CATALOG", str(tmp_path / "catalog.toml"))
    monkeypatch.setenv("NPC_WORKER_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("NPC_WORKER_STORAGE_URL", "file:///srv/videos")
    monkeypatch.setenv("DEVICE", "cpu")  # unprefixed: not ours
    settings = Settings()
    assert settings.device == "cuda:1"
    assert settings.catalog == tmp_path / "catalog.toml"
    assert settings.max_attempts == 5
    assert settings.storage_url == "file:///srv/videos"


def test_bad_environment_value_names_the_field(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_MAX_ATTEMPTS", "zero")
    with pytest.raises(ValidationError, match="max_attempts"):
        Settings()


def test_unrelated_prefixed_variables_do_not_break_startup(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_LOG_LEVEL", "debug")  # read by worker.logs, not a Settings field
    assert Settings().device == "auto"


def test_input_roots_split_on_pathsep_and_resolved(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b").mkdir()
    value = os.pathsep.join([str(tmp_path / "a" / ".." / "a"), "", "b", "~/inputs"])
    monkeypatch.setenv("NPC_WORKER_INPUT_ROOTS", value)
    roots = Settings().input_roots
    assert roots == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve(), (Path.home() / "inputs").resolve()]
    assert all(root.is_absolute() for root in roots)


def test_input_roots_given_as_a_list_are_resolved_too(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings(input_roots=["rel", tmp_path / "x" / ".." / "y"])
    assert settings.input_roots == [(tmp_path / "rel").resolve(), (tmp_path / "y").resolve()]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_valid_devices(device):
    assert Settings(device=device).device == device


@pytest.mark.parametrize("device", ["gpu:0", "cuda:", "cuda:x", "CPU", "mps", "", "cpu "])
def test_invalid_device_message_lists_the_choices(device):
    with pytest.raises(ValidationError) as caught:
        Settings(device=device)
    text = str(caught.value)
    assert "device" in text
    assert "must be auto, cpu, cuda or cuda:N" in text


def test_invalid_device_from_environment_is_refused(monkeypatch):
    monkeypatch.setenv("NPC_WORKER_DEVICE", "tpu")
    with pytest.raises(ValidationError, match="must be auto, cpu, cuda or cuda:N"):
        Settings()


def test_explicit_device_is_resolved_without_probing():
    assert Settings(device="cuda:3").resolved_device() == "cuda:3"
    assert Settings(device="cpu").resolved_device() == "cpu"


def test_cli_style_overrides_beat_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NPC_WORKER_DEVICE", "cuda")
    monkeypatch.setenv("NPC_WORKER_STORAGE_URL", "file:///from/env")
    monkeypatch.setenv("NPC_WORKER_MAX_IMAGE_PIXELS", "1000")
    settings = Settings(device="cpu", storage_url=f"file://{tmp_path}")
    assert settings.device == "cpu"
    assert settings.storage_url == f"file://{tmp_path}"
    assert settings.max_image_pixels == 1000  # not overridden: the environment still applies


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_image_pixels", 0), ("max_attempts", 0), ("http_port", 70000), ("prefix", "a b"), ("claim_idle_ms", 5)],
)
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_unknown_setting_is_refused():
    with pytest.raises(ValidationError, match="not_a_setting"):
        Settings(not_a_setting=1)


def test_settings_are_frozen():
    settings = Settings(device="cpu")
    with pytest.raises(ValidationError):
        settings.device = "cuda"  # type: ignore[misc]
    assert settings.device == "cpu"
