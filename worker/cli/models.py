"""`npc-worker make-tiny-model`: checkpoints built offline with random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker.cli.app import app


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
