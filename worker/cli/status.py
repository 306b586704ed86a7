"""`npc-worker status JOB` (the stored result, or where the job stands) and `npc-worker cancel JOB`."""

from __future__ import annotations

from typing import Annotated

import typer

from npc_video_client.contract import JobStatus
from worker.cli.app import app
from worker.cli.exits import ExitCode, redis_errors
from worker.cli.options import PrefixOption, RedisUrlOption, queue_client, settings_from

JobArgument = Annotated[str, typer.Argument(help="the job_id")]


def outcome_code(status: JobStatus) -> ExitCode:
    return ExitCode.OK if status == JobStatus.COMPLETED else ExitCode.JOB_NOT_COMPLETED


@app.command()
def status(job_id: JobArgument, redis_url: RedisUrlOption = None, prefix: PrefixOption = None) -> None:
    """Print the job's stored result JSON (exit 0 completed, 1 failed/cancelled/expired), or say where it stands
    when it has not finished yet (exit 4)."""
    from npc_video_client.client_errors import UnknownJob

    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    with redis_errors(settings):
        result = client.result(job_id)
        try:
            state = None if result is not None else client.status(job_id)
        except UnknownJob:
            typer.echo(f"job {job_id}: not finished yet (unknown: no state and no result)", err=True)
            raise typer.Exit(ExitCode.TIMEOUT) from None
    if state is not None:
        where = f"{state.status.value}, {state.attempt} run(s) started, progress {state.progress:.0%}"
        typer.echo(f"job {job_id}: not finished yet ({where})", err=True)
        raise typer.Exit(ExitCode.TIMEOUT)
    typer.echo(result.model_dump_json())
    raise typer.Exit(outcome_code(result.status))


@app.command()
def cancel(job_id: JobArgument, redis_url: RedisUrlOption = None, prefix: PrefixOption = None) -> None:
    """Ask the worker to stop the job at its next denoising step (a job not started yet ends as cancelled when a
    worker takes it). A job that already ended is left as it is."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    with redis_errors(settings):
        result = client.result(job_id)
        if result is None:
            client.cancel(job_id)
    if result is not None:
        typer.echo(f"job {job_id} already ended ({result.status.value}); nothing to cancel")
        return
    typer.echo(f"cancel requested for job {job_id}")
