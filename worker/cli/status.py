"""`npc-worker status JOB` (the stored result, or where the job stands) and `npc-worker cancel JOB`."""

from __future__ import annotations

from typing import Annotated

import typer

from npc_video_client.contract import JobResult, JobStatus
from worker.cli.app import app
from worker.cli.exits import ExitCode, redis_errors
from worker.cli.options import PrefixOption, RedisUrlOption, queue_client, settings_from

JobArgument = Annotated[str, typer.Argument(help="the job_id")]


def outcome_code(status: JobStatus) -> ExitCode:
    return ExitCode.OK if status == JobStatus.COMPLETED else ExitCode.JOB_NOT_COMPLETED


@app.command()
def status(job_id: JobArgument, redis_url: RedisUrlOption = None, prefix: PrefixOption = None) -> None:
    """Print the job's stored result JSON (exit 0 completed, 1 failed/cancelled/expired), or say that it has not
    finished yet (exit 4)."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    with redis_errors(settings):
        found = client.status(job_id)
    if not isinstance(found, JobResult):
        where = "running" if found.running else "queued, waiting for a retry, or unknown"
        typer.echo(f"job {job_id}: not finished yet ({where}; {found.attempts} run(s) started)", err=True)
        raise typer.Exit(ExitCode.TIMEOUT)
    typer.echo(found.model_dump_json())
    raise typer.Exit(outcome_code(found.status))


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
