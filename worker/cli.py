"""`npc-worker`: run jobs in-process, print the contract's JSON Schema, build tiny checkpoints."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError

from worker.contract import JobEnvelope, JobEvent, JobResult

app = typer.Typer(add_completion=False, no_args_is_help=True, help="NPC image-to-video worker.")

CatalogOption = Annotated[
    Path | None, typer.Option("--catalog", help="catalog TOML (default: NPC_WORKER_CATALOG or the embedded demo)")
]
DeviceOption = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
StorageOption = Annotated[str | None, typer.Option("--storage-url", help="file://DIR or s3://bucket/prefix")]


def _settings(**overrides: Any) -> Any:
    from worker.settings import Settings

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def _startup(build: Any, settings: Any) -> Any:
    """Configuration errors (catalog, storage) end the command with their message and exit status 2."""
    from models.catalog import CatalogError
    from worker.storage import StorageConfigError

    try:
        return build(settings)
    except (CatalogError, StorageConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


class SchemaKind(StrEnum):
    ENVELOPE = "envelope"
    RESULT = "result"
    EVENT = "event"
    ALL = "all"


def contract_schemas() -> dict[str, dict[str, Any]]:
    return {
        "envelope": JobEnvelope.model_json_schema(),
        "result": JobResult.model_json_schema(),
        "event": TypeAdapter(JobEvent).json_schema(),
    }


@app.command()
def schema(kind: Annotated[SchemaKind, typer.Argument()] = SchemaKind.ALL) -> None:
    """Print the JSON Schema of the job envelope, the result, the events, or all three."""
    schemas = contract_schemas()
    typer.echo(json.dumps(schemas if kind is SchemaKind.ALL else schemas[kind.value], indent=2))


@app.command()
def generate(
    job_file: Annotated[Path, typer.Argument(help="a job envelope JSON file ('-' for stdin)")],
    catalog: CatalogOption = None,
    device: DeviceOption = None,
    storage_url: StorageOption = None,
) -> None:
    """Run one job in-process (no Redis); the result JSON is the last line of stdout. Exit 1 unless completed."""
    from worker.logs import configure_logging
    from worker.runtime import build_runner

    configure_logging()
    settings = _settings(catalog=catalog, device=device, storage_url=storage_url)
    payload = sys.stdin.read() if str(job_file) == "-" else job_file.read_text(encoding="utf-8")
    runner = _startup(build_runner, settings)
    result = runner.run(payload)
    typer.echo(result.model_dump_json())
    raise typer.Exit(0 if result.status == "completed" else 1)


@app.command("make-tiny-model")
def make_tiny_model(
    directory: Annotated[Path, typer.Argument(help="where to write the diffusers-format checkpoint")],
    family: Annotated[str, typer.Option(help="model family")] = "wan-i2v",
    seed: Annotated[int, typer.Option(help="weight initialisation seed")] = 0,
) -> None:
    """Write a tiny randomly initialised checkpoint (offline) for tests and demos."""
    from models.tiny import TINY_BUILDERS

    builder = TINY_BUILDERS.get(family)
    if builder is None:
        typer.echo(f"error: no tiny builder for family {family!r}; known: {', '.join(sorted(TINY_BUILDERS))}", err=True)
        raise typer.Exit(2)
    builder(directory, seed)
    typer.echo(str(directory))


def main() -> None:
    app()
