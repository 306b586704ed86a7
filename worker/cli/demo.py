"""`npc-worker demo`: the README's main command."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from npc_video_client.contract import JobStatus
from worker.cli.app import app
from worker.cli.options import settings_from


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
    settings = settings_from(**overrides)
    result = run_demo(settings)
    typer.echo(result.model_dump_json(indent=2))
    if result.status != JobStatus.COMPLETED:
        typer.echo(f"demo job {result.status.value}: {result.error_code}: {result.error_message}", err=True)
        raise typer.Exit(1)
    typer.echo(f"\nMP4 ready: {result.url}\nposter:    {result.thumbnail_url}")
