"""Options and start-up helpers shared by the commands: settings from flags, job files, configuration errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

CatalogOption = Annotated[
    Path | None, typer.Option("--catalog", help="catalog TOML (default: NPC_WORKER_CATALOG or the embedded demo)")
]
DeviceOption = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
StorageOption = Annotated[str | None, typer.Option("--storage-url", help="file://DIR or s3://bucket/prefix")]


def settings_from(**overrides: Any) -> Any:
    from worker.settings import Settings

    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        typer.echo(f"error: invalid settings: {exc}", err=True)
        raise typer.Exit(2) from exc


def read_job_file(job_file: Path) -> str:
    if str(job_file) == "-":
        return sys.stdin.read()
    try:
        return job_file.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot read job file {job_file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc


def start_up(build: Any, settings: Any) -> Any:
    """Configuration errors (catalog, storage) end the command with their message and exit status 2."""
    from models.catalog import CatalogError
    from worker.storage import StorageConfigError

    try:
        return build(settings)
    except (CatalogError, StorageConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
