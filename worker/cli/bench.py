"""`npc-worker bench`: latency per stage of models x presets x settings, written as JSON, CSV, a plot and a report;
`npc-worker bench --compare A B`: the ratios of two such runs."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

from worker.cli.app import app
from worker.cli.options import CatalogOption, DeviceOption, settings_from

DEFAULT_PRESETS = "realtime,fast,balanced,quality"
VALUE_OPTIONS = ("catalog", "models", "presets", "repeats", "warmup", "out", "through", "redis_url", "device", "image")


class Through(StrEnum):
    IN_PROCESS = "in-process"
    QUEUE = "queue"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _redacted(url: str) -> str:
    """A URL without its password (results files get shared)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _command(values: dict[str, Any]) -> list[str]:
    """The command line equivalent to the parsed options (recorded in the results' environment)."""
    command = ["npc-worker", "bench"]
    for option in VALUE_OPTIONS:
        value = values[option]
        if value is not None:
            shown = _redacted(value) if option == "redis_url" else str(value)
            command += [f"--{option.replace('_', '-')}", shown]
    for option in ("override", "setting"):
        for value in values[option] or []:
            command += [f"--{option}", value]
    return command


@app.command()
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
        Through, typer.Option(help="in-process: the worker's JobRunner here; queue: Redis + an npc-worker serve child")
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
        raise _fail("--out DIR is required (or --compare A B)")
    plan = _plan(dict(locals()), out)
    from worker.logs import configure_logging

    configure_logging(level=os.environ.get("NPC_WORKER_LOG_LEVEL", "WARNING"))
    _run(plan)


def _plan(values: dict[str, Any], out: Path) -> Any:
    from models.catalog import CatalogError
    from worker.bench.jobs import base_image_uri, job_params
    from worker.bench.options import BenchUsageError, check_models, check_presets, check_settings, parse_overrides
    from worker.bench.session import BenchPlan
    from worker.runtime import load_configured_catalog

    settings = settings_from(catalog=values["catalog"], device=values["device"])
    try:
        catalog = load_configured_catalog(settings)
        image_uri = base_image_uri(values["image"])
        plan = BenchPlan(
            catalog=catalog,
            models=check_models(values["models"], catalog),
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
        )
        if plan.burst and plan.through != "queue":
            raise BenchUsageError("--burst measures a full queue: it needs --through queue")
        plan.check()
    except (BenchUsageError, CatalogError) as exc:
        raise _fail(str(exc)) from exc
    return plan


def _run(plan: Any) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker.bench.inprocess import BenchError
    from worker.bench.report import write_outputs
    from worker.bench.session import Session

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("bench: starting", total=plan.total_runs)

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=f"bench: {label}")

        session = Session(plan, advance)
        try:
            results = session.run()
        except BenchError as exc:
            if session.rows:  # keep what was measured before the failure
                write_outputs(session.results(), plan.out)
                raise _fail(f"{exc} (the {len(session.rows)} rows measured before it are in {plan.out})", 1) from exc
            raise _fail(str(exc), code=1) from exc
    paths = write_outputs(results, plan.out)
    for row in results["rows"]:
        step = f"{row['s_per_step']:.3f} s/step" if row["s_per_step"] is not None else "- s/step"
        typer.echo(f"{row['model']} / {row['preset']} / {row['setting']}: p50 {row['p50_ms']:.1f} ms, {step}")
    for path in paths.values():
        typer.echo(str(path))


def _compare(paths: tuple[Path, Path], out: Path | None) -> None:
    from worker.bench.compare import run_compare

    try:
        table, png = run_compare(paths[0], paths[1], out)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(table)
    typer.echo(str(png))
