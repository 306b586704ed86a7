"""`npc-worker synthetic` (list the synthetic models, count their parameters) and `npc-worker
make-synthetic-model` (write one as a diffusers-format directory)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.app import app


class ScaleChoice(StrEnum):
    FULL = "full"
    NARROW = "narrow"


class DtypeChoice(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


ScaleOption = Annotated[
    ScaleChoice, typer.Option(help="full: the real sizes; narrow: same classes, tiny widths (CPU tests)")
]


def _known_or_exit(name: str) -> None:
    """Exit 2 with the list of known names when `name` is not a synthetic model."""
    from models.synthetic import UnknownSyntheticModel, lookup

    try:
        lookup(name)
    except UnknownSyntheticModel as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def synthetic(
    name: Annotated[str | None, typer.Argument(help="a synthetic model name (see --list)")] = None,
    list_models: Annotated[bool, typer.Option("--list", help="list the names with family and description")] = False,
    count: Annotated[bool, typer.Option("--count", help="print NAME's parameter counts as JSON")] = False,
    scale: ScaleOption = ScaleChoice.FULL,
) -> None:
    """Synthetic models: real architectures and configs of published checkpoints with random weights."""
    from models.synthetic import SYNTHETIC_MODELS, count_parameters

    if list_models:
        width = max(len(model_name) for model_name in SYNTHETIC_MODELS)
        for model in SYNTHETIC_MODELS.values():
            typer.echo(f"{model.name:<{width}}  {model.family:<13}  {model.description}")
        return
    if name is None or not count:
        typer.echo("error: say `npc-worker synthetic --list` or `npc-worker synthetic NAME --count`", err=True)
        raise typer.Exit(2)
    _known_or_exit(name)
    typer.echo(json.dumps(count_parameters(name, scale.value)))


@app.command("make-synthetic-model")
def make_synthetic_model(
    directory: Annotated[Path, typer.Argument(help="where to write the diffusers-format checkpoint")],
    *,
    config: Annotated[str, typer.Option("--config", help="the synthetic model (npc-worker synthetic --list)")],
    dtype: Annotated[DtypeChoice, typer.Option(help="weight dtype")] = DtypeChoice.BFLOAT16,
    device: Annotated[str, typer.Option(help="where weights are built: cpu, cuda or cuda:N")] = "cpu",
    scale: ScaleOption = ScaleChoice.FULL,
    seed: Annotated[int, typer.Option(help="weight initialisation seed")] = 0,
) -> None:
    """Write a synthetic model loadable with its family's from_pretrained; one component in memory at a time."""
    _known_or_exit(config)
    import torch

    from models.synthetic.writer import write_synthetic_model

    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        typer.echo(f"error: --device {device!r} is not a device: use cpu, cuda or cuda:N", err=True)
        raise typer.Exit(2) from exc
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        typer.echo(f"error: --device {device!r} asks for CUDA, which this machine does not have", err=True)
        raise typer.Exit(2)
    write_synthetic_model(
        directory, config, dtype=getattr(torch, dtype.value), device=device, seed=seed, scale=scale.value
    )
    typer.echo(str(directory))
