"""`npc-worker`: run jobs in-process, print the contract's JSON Schema, build tiny checkpoints."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError

from worker.contract import JobEnvelope, JobEvent, JobResult, JobStatus

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


def _read_job_file(job_file: Path) -> str:
    if str(job_file) == "-":
        return sys.stdin.read()
    try:
        return job_file.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot read job file {job_file}: {exc.strerror or exc}", err=True)
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
def schema(
    kind: Annotated[SchemaKind, typer.Argument()] = SchemaKind.ALL,
    out: Annotated[Path | None, typer.Option(help="write <kind>.schema.json files into this folder instead")] = None,
) -> None:
    """Print the JSON Schema of the job envelope, the result, the events, or all three."""
    schemas = contract_schemas()
    chosen = schemas if kind is SchemaKind.ALL else {kind.value: schemas[kind.value]}
    if out is None:
        typer.echo(json.dumps(chosen if kind is SchemaKind.ALL else chosen[kind.value], indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, body in chosen.items():
        (out / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        typer.echo(str(out / f"{name}.schema.json"))


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
    payload = _read_job_file(job_file)
    runner = _startup(build_runner, settings)
    result = runner.run(payload)
    typer.echo(result.model_dump_json())
    raise typer.Exit(0 if result.status == JobStatus.COMPLETED else 1)


@app.command()
def serve(catalog: CatalogOption = None, device: DeviceOption = None, storage_url: StorageOption = None) -> None:
    """Consume npc_response jobs from the Redis lane streams until SIGTERM/SIGINT (a second one: at once)."""
    from worker.http import HealthServer
    from worker.logs import configure_logging
    from worker.runtime import build_worker
    from worker.shutdown import ShutdownFlag

    configure_logging()
    settings = _settings(catalog=catalog, device=device, storage_url=storage_url)
    shutdown = ShutdownFlag()
    shutdown.install()
    service = _startup(lambda s: build_worker(s, shutdown), settings)
    http = None
    if settings.http_port:
        http = HealthServer(
            settings.http_host, settings.http_port, service.healthz, service.readyz, service.metrics.registry
        )
        http.start()
    try:
        code = service.serve()
    finally:
        if http is not None:
            http.stop()
    raise typer.Exit(code)


class LaneChoice(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@app.command()
def submit(
    job_file: Annotated[Path, typer.Argument(help="a job envelope JSON file ('-' for stdin)")],
    lane: Annotated[LaneChoice, typer.Option(help="priority lane")] = LaneChoice.NORMAL,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result and print it")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 300.0,
    redis_url: Annotated[str | None, typer.Option(help="default: NPC_WORKER_REDIS_URL")] = None,
) -> None:
    """Enqueue a job (producer side). With --wait, print the result JSON; exit 1 unless completed."""
    from worker.client import JobRejected, NpcVideoClient

    settings = _settings(redis_url=redis_url)
    payload = _read_job_file(job_file)
    try:
        envelope = json.loads(payload)
    except ValueError as exc:
        typer.echo(f"error: {job_file} is not JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    client = NpcVideoClient(settings.redis_url, settings.prefix)
    try:
        job_id = client.submit(envelope, lane=lane.value)
    except JobRejected as exc:
        typer.echo(f"error: job rejected: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not wait:
        typer.echo(json.dumps({"job_id": job_id, "lane": lane.value}))
        return
    try:
        result = client.wait(job_id, timeout_s=timeout)
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(result.model_dump_json())
    raise typer.Exit(0 if result.status == JobStatus.COMPLETED else 1)


@app.command()
def demo(
    redis_url: Annotated[
        str | None, typer.Option(help="default: NPC_WORKER_REDIS_URL; a local one if none answers")
    ] = None,
) -> None:
    """Round trip on the embedded defaults: Redis, tiny model, worker, one job, the MP4's path; then stop."""
    from worker.demo import DEMO_PREFIX, run_demo
    from worker.logs import configure_logging

    configure_logging()
    overrides = {"redis_url": redis_url, "prefix": None if "NPC_WORKER_PREFIX" in os.environ else DEMO_PREFIX}
    settings = _settings(**overrides)
    result = run_demo(settings)
    typer.echo(result.model_dump_json(indent=2))
    if result.status != JobStatus.COMPLETED:
        typer.echo(f"demo job {result.status.value}: {result.error_code}: {result.error_message}", err=True)
        raise typer.Exit(1)
    typer.echo(f"\nMP4 ready: {result.url}\nposter:    {result.thumbnail_url}")


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
