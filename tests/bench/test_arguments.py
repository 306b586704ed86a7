"""Bad bench arguments end with exit status 2 and one line naming the value and what is known."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--models", "tiny-wan,nope"], ["unknown model 'nope' in --models", "the catalog has: tiny-wan"]),
        (
            ["--presets", "fast,ultra"],
            ["unknown preset 'ultra' in --presets", "known: realtime, fast, balanced, quality"],
        ),
        (["--presets", "fast,fast"], ["--presets names fast more than once"]),
        (["--setting", "turbo"], ["unknown setting 'turbo' in --setting", "use catalog, stock or NAME:key=value"]),
        (["--setting", "x:warp=true"], ["unknown key 'warp'", "compile", "cache.type"]),
        (["--setting", "x:compile=maybe"], ["--setting x", "speed.compile"]),
        (["--setting", "x:cache.type=sideways"], ["--setting x", "speed.cache"]),
        (["--setting", "stock:compile=true"], ["setting name 'stock'"]),
        (["--setting", "stock", "--setting", "stock"], ["--setting names stock more than once"]),
        (["--override", "colour=red"], ["unknown --override key 'colour'", "width", "steps"]),
        (["--override", "width=abc"], ["--override: params.width"]),
        (["--override", "seed=3"], ["--override seed is not allowed", "own seed"]),
        (["--override", "steps"], ["--override 'steps' is not key=value"]),
        (["--image", "/nonexistent/portrait.png"], ["--image /nonexistent/portrait.png cannot be read"]),
        (["--setting", "b:worker.max_batch=0"], ["--setting b: worker.max_batch", "greater than or equal to 1"]),
        (["--setting", "b:worker.batch_wait_ms=soon"], ["--setting b: worker.batch_wait_ms", '(got "soon")']),
        (["--setting", "b:worker.threads=4"], ["unknown key 'worker.threads'", "worker.max_batch"]),
        (["--burst", "4"], ["--burst measures a full queue: it needs --through queue"]),
        (["--setting", "g2:worker.group_size=2"], ["--setting g2: worker.group_size runs a worker group", "queue"]),
        (
            ["--setting", "g0:worker.group_size=0", "--through", "queue"],
            ["--setting g0: worker.group_size", "greater than or equal to 1"],
        ),
    ],
)
def test_bad_arguments_exit_2_naming_the_value(
    arguments: list[str], expected: list[str], catalog_path: Path, tmp_path: Path, npc_worker_app: typer.Typer
) -> None:
    result = CliRunner().invoke(
        npc_worker_app,
        ["bench", "--catalog", str(catalog_path), "--out", str(tmp_path / "out"), "--device", "cpu", *arguments],
    )
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error: ")
    for part in expected:
        assert part in message
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_out_is_required_and_repeats_must_be_positive(catalog_path: Path, npc_worker_app: typer.Typer) -> None:
    missing = CliRunner().invoke(npc_worker_app, ["bench", "--catalog", str(catalog_path)])
    assert missing.exit_code == 2 and "--out DIR is required" in missing.output
    zero = CliRunner().invoke(npc_worker_app, ["bench", "--catalog", str(catalog_path), "--out", "x", "--repeats", "0"])
    assert zero.exit_code == 2 and "--repeats" in zero.output


def test_a_malformed_catalog_exits_2_with_its_reason(tmp_path: Path, npc_worker_app: typer.Typer) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[defaults]\nmodel = "missing"\n[models.a]\nfamily = "wan-i2v"\npath = "."\n')
    result = CliRunner().invoke(npc_worker_app, ["bench", "--catalog", str(catalog), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "defaults.model" in result.output and "'missing'" in result.output
