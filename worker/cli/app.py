"""The `npc-worker` Typer application; each command lives in its own module of this package."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="NPC image-to-video worker.")


def version_text() -> str:
    """The worker's version, the wire contract it speaks and the client distribution it runs with."""
    from importlib.metadata import PackageNotFoundError, version

    from npc_video_client.contract import CONTRACT_VERSION

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return (
        f"npc-worker {installed('npc-video-worker')} "
        f"(contract v{CONTRACT_VERSION}, npc-video-client {installed('npc-video-client')})"
    )


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """NPC image-to-video worker."""
