"""Residency: two tiny models under a device memory budget on CPU, where moves are no-ops but bookkeeping is real."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.catalog import CatalogError, load_catalog
from models.residency import weight_bytes
from npc_video_client.contract import JobResult, JobStatus
from tests.support.jobs import envelope
from worker.runtime import Runtime
from worker.settings import Settings

RunnerFactory = Callable[..., Runtime]
OTHER = "other-wan"


@pytest.fixture(scope="module")
def other_wan_dir(model_dir: Callable[..., Path]) -> Path:
    return model_dir("wan-i2v", seed=1)


@pytest.fixture(scope="module")
def model_bytes(other_wan_dir: Path) -> int:
    """Both tiny models share one architecture, so one measurement sizes either."""
    from diffusers import WanImageToVideoPipeline

    return weight_bytes(WanImageToVideoPipeline.from_pretrained(str(other_wan_dir), local_files_only=True))


def two_models(other_dir: Path, offload: str = "none") -> str:
    """A second model, picked by art_style="anime" (the default model stays tiny-wan)."""
    return f"""
[models.{OTHER}]
family = "wan-i2v"
path = "{other_dir}"
dtype = "float32"
offload = "{offload}"

[styles.anime]
model = "{OTHER}"
"""


def run(runner: Runtime, index: int, model: str) -> JobResult:
    style = "anime" if model == OTHER else None
    job = envelope(f"j{index}", seed=index, width=32, height=32, duration=0.5, steps=1, art_style=style)
    result = runner.run(job)
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert result.model == model
    return result


def test_two_models_alternating_under_a_budget_load_once_and_swap(
    make_runner: RunnerFactory, other_wan_dir: Path, model_bytes: int
) -> None:
    runner = make_runner(two_models(other_wan_dir), device_memory_budget=int(model_bytes * 1.5))
    order = ["tiny-wan", OTHER, "tiny-wan", OTHER, OTHER]
    results = [run(runner, index, model) for index, model in enumerate(order)]

    pool = runner.pool
    assert pool.disk_loads == 2
    first, second = pool.stats("tiny-wan"), pool.stats(OTHER)
    assert (first.disk_loads, first.swaps, first.offloads) == (1, 1, 2)
    assert (second.disk_loads, second.swaps, second.offloads) == (1, 1, 1)
    assert first.weight_bytes == second.weight_bytes == model_bytes
    assert pool.residency.on_device == [OTHER]

    assert [result.timings.load_ms > 0 for result in results] == [True, True, False, False, False]
    assert [result.timings.swap_ms > 0 for result in results] == [False, False, True, True, False]
    assert all(result.timings.prepare_ms >= result.timings.load_ms + result.timings.swap_ms for result in results)


def test_models_that_fit_stay_resident(make_runner: RunnerFactory, other_wan_dir: Path, model_bytes: int) -> None:
    runner = make_runner(two_models(other_wan_dir), device_memory_budget=model_bytes * 3)
    results = [run(runner, index, model) for index, model in enumerate(["tiny-wan", OTHER, "tiny-wan", OTHER])]
    for name in ("tiny-wan", OTHER):
        stats = runner.pool.stats(name)
        assert (stats.disk_loads, stats.swaps, stats.offloads) == (1, 0, 0)
    assert runner.pool.residency.on_device == ["tiny-wan", OTHER]
    assert all(result.timings.swap_ms == 0 for result in results)
    assert [result.timings.load_ms > 0 for result in results] == [True, True, False, False]


def test_a_swapped_model_keeps_its_one_pipeline_object(
    make_runner: RunnerFactory, other_wan_dir: Path, model_bytes: int
) -> None:
    runner = make_runner(two_models(other_wan_dir), device_memory_budget=int(model_bytes * 1.5))
    run(runner, 0, OTHER)
    pipe = runner.pool.get(OTHER).pipe
    storage = [parameter.data_ptr() for parameter in pipe.transformer.parameters()]
    run(runner, 1, "tiny-wan")
    run(runner, 2, OTHER)
    assert runner.pool.stats(OTHER).swaps == 1
    assert runner.pool.get(OTHER).pipe is pipe
    assert [parameter.data_ptr() for parameter in pipe.transformer.parameters()] == storage  # no copy on CPU
    gc.collect()
    pipelines = [
        obj
        for obj in gc.get_objects()
        if type(obj).__name__ == "WanImageToVideoPipeline" and obj.config._name_or_path == str(other_wan_dir)
    ]
    assert pipelines == [pipe]


def test_a_model_larger_than_the_budget_runs_with_a_warning(
    make_runner: RunnerFactory, other_wan_dir: Path, model_bytes: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(two_models(other_wan_dir), device_memory_budget=model_bytes // 2)
    run(runner, 0, "tiny-wan")
    run(runner, 1, OTHER)
    assert "is larger than the device memory budget" in caplog.text
    assert "moved model tiny-wan to CPU memory to make room for other-wan" in caplog.text
    assert runner.pool.residency.on_device == [OTHER]


@pytest.mark.parametrize("mode", ["model", "group"])
def test_offload_modes_are_ignored_on_cpu_with_a_log_line(
    make_runner: RunnerFactory, other_wan_dir: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models")
    runner = make_runner(two_models(other_wan_dir, offload=mode))
    run(runner, 0, OTHER)
    assert f"model {OTHER}: offload={mode!r} ignored on cpu" in caplog.text
    assert OTHER in runner.pool.residency.on_device  # kept like any other model instead
    assert runner.catalog.models[OTHER].offload == mode


def test_unknown_offload_mode_is_refused_at_catalog_load(tmp_path: Path, tiny_wan_dir: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(
        f'[defaults]\nmodel = "m"\n[models.m]\nfamily = "wan-i2v"\npath = "{tiny_wan_dir}"\noffload = "disk"\n',
        encoding="utf-8",
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message and "[models.m.offload]" in message and "'group'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40GiB", 40 * 1024**3), ("500MB", 500_000_000), ("1.5 gib", 1536 * 1024**2), ("123456", 123456)],
)
def test_budget_accepts_bytes_and_units(text: str, expected: int) -> None:
    assert Settings(device_memory_budget=text).device_memory_budget == expected


def test_budget_comes_from_the_environment_and_defaults_to_unlimited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NPC_WORKER_DEVICE_MEMORY_BUDGET", raising=False)
    assert Settings().device_memory_budget is None
    monkeypatch.setenv("NPC_WORKER_DEVICE_MEMORY_BUDGET", "40GiB")
    assert Settings().device_memory_budget == 40 * 1024**3


@pytest.mark.parametrize("text", ["40 gigs", "GiB", "-1GB", "0"])
def test_budget_refuses_what_is_not_a_positive_size(text: str) -> None:
    with pytest.raises(ValidationError, match="device_memory_budget"):
        Settings(device_memory_budget=text)


def test_is_ready_only_for_the_model_on_the_device(
    make_runner: RunnerFactory, other_wan_dir: Path, model_bytes: int
) -> None:
    runner = make_runner(two_models(other_wan_dir), device_memory_budget=int(model_bytes * 1.5))
    runner.pool.get("tiny-wan")
    assert runner.pool.is_ready("tiny-wan") and not runner.pool.is_ready(OTHER)
    runner.pool.get(OTHER)  # the budget holds one: tiny-wan goes to CPU memory
    assert runner.pool.is_ready(OTHER) and not runner.pool.is_ready("tiny-wan")
