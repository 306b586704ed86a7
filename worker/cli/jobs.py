"""`npc-worker generate` (one job in-process) and `npc-worker submit` (the producer side)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from npc_video_client.contract import JobStatus
from worker.cli.app import app
from worker.cli.exits import ExitCode, fail, redis_errors
from worker.cli.options import (
    CatalogOption,
    DeviceOption,
    PrefixOption,
    RedisUrlOption,
    StorageOption,
    check_device,
    queue_client,
    read_job_file,
    settings_from,
    start_up,
)


@app.command()
def generate(
    job_file: Annotated[Path, typer.Argument(help="a job envelope JSON file ('-' for stdin)")],
    catalog: CatalogOption = None,
    device: DeviceOption = None,
    storage_url: StorageOption = None,
) -> None:
    """Run one job in-process (no Redis); the result JSON is the last line of stdout. Exit 1 unless completed."""
    from worker.logs import configure_logging
    from worker.runtime import build_runtime

    configure_logging()
    settings = settings_from(catalog=catalog, device=device, storage_url=storage_url)
    payload = read_job_file(job_file)
    check_device(settings)
    runtime = start_up(build_runtime, settings)
    result = runtime.run(payload)
    typer.echo(result.model_dump_json())
    raise typer.Exit(0 if result.status == JobStatus.COMPLETED else 1)


class LaneChoice(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@app.command()
def submit(
    job_file: Annotated[Path, typer.Argument(help="a job envelope JSON file ('-' for stdin)")],
    *,
    lane: Annotated[LaneChoice, typer.Option(help="priority lane")] = LaneChoice.NORMAL,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result and print it")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 300.0,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Enqueue a job (producer side). With --wait, print the result JSON; exit 1 unless completed, 4 on timeout."""
    from npc_video_client.client import JobRejected

    settings = settings_from(redis_url=redis_url, prefix=prefix)
    payload = read_job_file(job_file)
    try:
        envelope = json.loads(payload)
    except ValueError as exc:
        fail(f"{job_file} is not JSON: {exc}")
    client = queue_client(settings)
    with redis_errors(settings):
        try:
            job_id = client.submit(envelope, lane=lane.value)
        except JobRejected as exc:
            fail(f"job rejected: {exc}")
        if not wait:
            typer.echo(json.dumps({"job_id": job_id, "lane": lane.value}))
            return
        try:
            result = client.wait(job_id, timeout_s=timeout)
        except TimeoutError as exc:
            fail(str(exc), ExitCode.TIMEOUT)
    typer.echo(result.model_dump_json())
    raise typer.Exit(ExitCode.OK if result.status == JobStatus.COMPLETED else ExitCode.JOB_NOT_COMPLETED)
