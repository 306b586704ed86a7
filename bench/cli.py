"""`npc-worker bench`: latency per stage of models x presets x settings, written as JSON, CSV, a plot and a report;
`npc-worker bench --compare A B`: the ratios of two such runs.

The command is a plugin of `npc-worker` (entry point `npc_worker.commands: bench = bench.cli:register`, loaded by
worker.cli.plugins); `python -m bench` runs it without the worker's CLI around it (a source tree that is not
installed, such as the GPU check's copy, has no entry points).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from worker.cli.exits import ExitCode, fail, redact
from worker.cli.options import CatalogOption, DeviceOption, settings_from

DEFAULT_PRESETS = "realtime,fast,balanced,quality"
VALUE_OPTIONS = (
    "catalog",
    "models",
    "presets",
    "repeats",
    "warmup",
    "out",
    "through",
    "redis_url",
    "loras",
    "swap_with",
    "device",
    "image",
)


class Through(StrEnum):
    IN_PROCESS = "in-process"
    QUEUE = "queue"


def _command(values: dict[str, Any]) -> list[str]:
    """The command line equivalent to the parsed options (recorded in the results' environment; results files get
    shared, so a Redis password is shown as ***)."""
    command = ["npc-worker", "bench"]
    for option in VALUE_OPTIONS:
        value = values[option]
        if value is not None:
            shown = redact(value) if option == "redis_url" else str(value)
            command += [f"--{option.replace('_', '-')}", shown]
    for option in ("burst", "warm"):
        if values[option]:
            command += [f"--{option}", str(values[option])]
    for option in ("override", "setting"):
        for value in values[option] or []:
            command += [f"--{option}", value]
    return command


def bench(
    *,
    catalog: CatalogOption = None,
    models: Annotated[
        str | None, typer.Option(help="comma-separated catalog models (default: the catalog's default model)")
    ] = None,
    presets: Annotated[str, typer.Option(help="comma-separated quality presets")] = DEFAULT_PRESETS,
    repeats: Annotated[int, typer.Option(min=1, help="measured runs per row")] = 3,
    warmup: Annotated[int, typer.Option(min=0, help="unmeasured runs first (model load, compilation, caches)")] = 1,
    out: Annotated[Path | None, typer.Option(help="results folder (with --compare: where compare.png goes)")] = None,
    override: Annotated[
        list[str] | None,
        typer.Option(help="job params for every job: key=value, repeatable (e.g. --override 'width=64 steps=2')"),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            help="catalog (default), stock (bare diffusers, no speed settings) or NAME:key=value,... over the "
            "models' speed tables (e.g. compile:compile=true), presets (preset.steps=4) or worker settings "
            "(worker.max_batch=4); repeatable"
        ),
    ] = None,
    through: Annotated[
        Through, typer.Option(help="in-process: the worker's stages here; queue: Redis + an npc-worker serve child")
    ] = Through.IN_PROCESS,
    redis_url: Annotated[
        str | None, typer.Option(help="--through queue: this Redis (default: a throw-away one)")
    ] = None,
    burst: Annotated[
        int,
        typer.Option(
            min=0,
            help="--through queue: after each row, N jobs at once: throughput, device busy fraction, gaps, batches",
        ),
    ] = 0,
    warm: Annotated[
        int,
        typer.Option(
            min=0,
            help="--through queue: after each row, N rounds of a job cold and one behind a warm backlog, N reactions "
            "warmed, N pairs of jobs with and without previews (bench.warming)",
        ),
    ] = 0,
    loras: Annotated[
        str | None,
        typer.Option(
            help="comma-separated catalog LoRAs taken in turn: run i of every row adds the i-th (modulo their count), "
            "so the `lora` stage shows the first read from a file and the switch between loaded adapters"
        ),
    ] = None,
    swap_with: Annotated[
        str | None,
        typer.Option(
            help="in-process: a catalog model brought onto the device before each run, so each run's model comes "
            "back from CPU memory under a device memory budget (--setting NAME:worker.device_memory_budget=...)"
        ),
    ] = None,
    device: DeviceOption = None,
    image: Annotated[Path | None, typer.Option(help="base image of every job (default: a drawn stand-in)")] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option(help="A B: print B/A ratios of two result folders, write compare.png")
    ] = None,
) -> None:
    """Benchmark presets: runs, p50/p95 latency, per-stage times, s/step, memory and FLOPs per row."""
    if compare is not None:
        _compare(compare, out)
        return
    if out is None:
        fail("--out DIR is required (or --compare A B)")
    plan = _plan(dict(locals()), out)
    from bench.worker_api import configure_logging

    configure_logging(level=os.environ.get("NPC_WORKER_LOG_LEVEL", "WARNING"))
    _run(plan)


def register(app: typer.Typer) -> None:
    """The entry point (`npc_worker.commands`): add `bench` to the `npc-worker` application."""
    app.command("bench")(bench)


def _plan(values: dict[str, Any], out: Path) -> Any:
    from bench.jobs import base_image_uri, job_params
    from bench.options import (
        BenchUsageError,
        check_loras,
        check_models,
        check_presets,
        check_settings,
        check_swap_with,
        parse_overrides,
    )
    from bench.session import BenchPlan
    from bench.worker_api import load_configured_catalog
    from models.catalog import CatalogError

    settings = settings_from(catalog=values["catalog"], device=values["device"])
    try:
        catalog = load_configured_catalog(settings)
        image_uri = base_image_uri(values["image"])
        models = check_models(values["models"], catalog)
        plan = BenchPlan(
            catalog=catalog,
            models=models,
            presets=check_presets(values["presets"]),
            settings=check_settings(values["setting"] or []),
            repeats=values["repeats"],
            warmup=values["warmup"],
            overrides=parse_overrides(values["override"] or [], job_params(image_uri, "fast", {})),
            through=values["through"].value,
            redis_url=values["redis_url"],
            out=out,
            image_uri=image_uri,
            worker_settings=settings,
            command=_command(values),
            burst=values["burst"],
            warm=values["warm"],
            loras=check_loras(values["loras"], catalog),
            swap_with=check_swap_with(values["swap_with"], models, catalog),
        )
        plan.check()
    except (BenchUsageError, CatalogError) as exc:
        fail(str(exc))
    return plan


def _run(plan: Any) -> None:
    """Run the matrix with a progress bar; results.json and results.csv are rewritten after every row, and a bench
    that fails or is stopped (SIGTERM, Ctrl-C) writes every file for the rows it finished before it exits."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.inprocess import BenchError
    from bench.report import write_outputs, write_tables
    from bench.session import Session
    from bench.stopping import BenchStopped, stop_on_signals

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    session: Session | None = None
    try:
        with stop_on_signals(), Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task("bench: starting", total=plan.total_runs)

            def advance(label: str) -> None:
                progress.update(task, advance=1, description=f"bench: {label}")

            session = Session(plan, advance)
            results = session.run(checkpoint=lambda results: write_tables(results, plan.out))
    except (BenchError, BenchStopped) as exc:
        if session is None:
            raise
        session.state = "stopped" if isinstance(exc, BenchStopped) else "failed"
        kept = f"the {len(session.rows)} of {plan.total_rows} rows finished before it are in {plan.out}"
        if session.rows:
            write_outputs(session.results(), plan.out)
        else:
            write_tables(session.results(), plan.out)
        if isinstance(exc, BenchStopped):
            typer.echo(f"error: bench {exc} ({kept})", err=True)
            raise typer.Exit(exc.exit_status) from exc
        fail(f"{exc} ({kept})", ExitCode.JOB_NOT_COMPLETED)
    paths = write_outputs(results, plan.out)
    for row in results["rows"]:
        step = f"{row['s_per_step']:.3f} s/step" if row["s_per_step"] is not None else "- s/step"
        typer.echo(f"{row['model']} / {row['preset']} / {row['setting']}: p50 {row['p50_ms']:.1f} ms, {step}")
    for path in paths.values():
        typer.echo(str(path))


def _compare(paths: tuple[Path, Path], out: Path | None) -> None:
    from bench.compare import run_compare

    try:
        table, png = run_compare(paths[0], paths[1], out)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(table)
    typer.echo(str(png))
