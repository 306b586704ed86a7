"""What the scripts of the former benchmarks/ folder measured, through `npc-worker bench` in-process: a LoRA read from
its file vs a switch between loaded LoRAs (`--loras`, the `lora` stage), a model read from disk vs swapped back from
CPU memory (`--swap-with` under `worker.device_memory_budget`, the `load` stage and `first_run_stages`), and the
resident set before and after a row's runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bench.conftest import load_valid_results, npc_worker_bench
from tests.support.catalogs import tiny_catalog_text, write_catalog

JOB = ("--override", "width=64 height=64 steps=2 duration=0.5")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory, tiny_wan_dir: Path, tiny_loras: dict[str, Path]) -> Path:
    """The tiny catalog and a second model entry (the same checkpoint: a pipeline object of its own in the pool)."""
    extra = f'[models.other-wan]\nfamily = "wan-i2v"\npath = "{tiny_wan_dir}"\ndtype = "float32"\n'
    return write_catalog(tmp_path_factory.mktemp("two-models"), tiny_catalog_text(tiny_wan_dir, tiny_loras, extra))


@pytest.fixture(scope="module")
def swapping_run(tmp_path_factory: pytest.TempPathFactory, two_models: Path, tiny_wan_dir: Path) -> dict[str, Any]:
    """One row without a budget and one with a budget that holds one model, other-wan brought onto the device
    before each run, LoRAs taken in turn."""
    weights = sum(path.stat().st_size for path in tiny_wan_dir.rglob("*.safetensors"))
    root = tmp_path_factory.mktemp("bench-swap")
    run = npc_worker_bench(
        *("--catalog", str(two_models), "--models", "tiny-wan", "--presets", "realtime", *JOB),
        *("--repeats", "4", "--warmup", "1", "--loras", "glow,comfy", "--swap-with", "other-wan"),
        *("--setting", "catalog", "--setting", f"swap:worker.device_memory_budget={int(weights * 1.5)}"),
        *("--out", str(root / "out")),
        cwd=root,
    )
    assert run.returncode == 0, run.stderr
    return load_valid_results(root / "out")


def test_the_lora_stage_times_the_runs_activation_and_the_first_run_reads_the_files(
    swapping_run: dict[str, Any],
) -> None:
    assert swapping_run["environment"]["loras"] == ["glow", "comfy"]
    for row in swapping_run["rows"]:
        assert row["stages"]["lora"] > 0  # a switch between the two loaded LoRAs on every measured run
        assert row["first_run_stages"]["lora"] > 0  # the first run read glow from its file
        assert row["first_run_stages"]["queue"] is None and row["first_run_stages"]["generate"] is None
        present = {stage for stage, value in row["stages"].items() if value is not None}
        assert "lora" in present and "prepare" in present


def test_without_a_budget_the_model_stays_and_with_one_every_run_swaps_it_back(swapping_run: dict[str, Any]) -> None:
    assert swapping_run["environment"]["swap_with"] == "other-wan"
    stays, swaps = swapping_run["rows"]
    assert (stays["setting"], swaps["setting"]) == ("catalog", "swap")
    assert stays["first_run_stages"]["load"] > 0  # read from disk
    assert stays["stages"]["load"] == 0.0  # other-wan came in beside it: nothing to move back
    assert swaps["first_run_stages"]["load"] > 0
    assert swaps["stages"]["load"] > 0  # moved back from CPU memory before every run
    settings = {setting["name"]: setting for setting in swapping_run["environment"]["settings"]}
    assert "device_memory_budget" in settings["swap"]["worker_settings"]


def test_rows_report_the_resident_set_before_and_after_their_measured_runs(swapping_run: dict[str, Any]) -> None:
    for row in swapping_run["rows"]:
        assert row["host_rss_start_bytes"] > 0 and row["host_rss_bytes"] > 0


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--loras", "glow,nope"], "unknown LoRA 'nope' in --loras; the catalog's [loras] has: comfy, glow, sparkle"),
        (["--swap-with", "nope"], "unknown model 'nope' in --swap-with"),
        (["--models", "tiny-wan", "--swap-with", "tiny-wan"], "--swap-with tiny-wan is also in --models"),
        (["--swap-with", "other-wan", "--through", "queue"], "--swap-with moves models inside this process"),
        (["--override", "loras=glow"], "--override loras is not allowed: use --loras"),
    ],
)
def test_bad_lora_and_swap_arguments_exit_2(
    arguments: list[str], expected: str, two_models: Path, tmp_path: Path
) -> None:
    run = npc_worker_bench("--catalog", str(two_models), "--out", str(tmp_path / "out"), *arguments, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert expected in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
