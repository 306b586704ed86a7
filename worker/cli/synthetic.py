"""`npc-worker synthetic list | count NAME | write NAME DIR`: the synthetic models (real architectures with random
weights, models.synthetic) listed, counted, or written as diffusers-format directories with LoRAs that fit them."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from worker.cli.app import app

synthetic_app = typer.Typer(
    no_args_is_help=True,
    help="Synthetic models: real architectures and configs of published checkpoints with random weights.",
)
app.add_typer(synthetic_app, name="synthetic")


class ScaleChoice(StrEnum):
    FULL = "full"
    NARROW = "narrow"


class DtypeChoice(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


class LoraFormatChoice(StrEnum):
    DIFFUSERS = "diffusers"
    KOHYA = "kohya"


NameArgument = Annotated[str, typer.Argument(help="a synthetic model (npc-worker synthetic list)")]
ScaleOption = Annotated[
    ScaleChoice, typer.Option(help="full: the real sizes; narrow: same classes, tiny widths (CPU tests, the demo)")
]


def _known_or_exit(name: str) -> None:
    """Exit 2 with the list of known names when `name` is not a synthetic model."""
    from models.synthetic import UnknownSyntheticModel, lookup

    try:
        lookup(name)
    except UnknownSyntheticModel as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@synthetic_app.command("list")
def list_models() -> None:
    """One line per synthetic model: name, family and description."""
    from models.synthetic import SYNTHETIC_MODELS

    width = max(len(model_name) for model_name in SYNTHETIC_MODELS)
    for model in SYNTHETIC_MODELS.values():
        typer.echo(f"{model.name:<{width}}  {model.family:<13}  {model.description}")


@synthetic_app.command()
def count(name: NameArgument, scale: ScaleOption = ScaleChoice.FULL) -> None:
    """Print NAME's parameters per component and in total as JSON (from meta-device models: nothing allocated)."""
    from models.synthetic import count_parameters

    _known_or_exit(name)
    typer.echo(json.dumps(count_parameters(name, scale.value)))


@synthetic_app.command()
def write(
    name: NameArgument,
    directory: Annotated[Path, typer.Argument(help="where to write the diffusers-format checkpoint")],
    *,
    scale: ScaleOption = ScaleChoice.FULL,
    dtype: Annotated[DtypeChoice, typer.Option(help="weight dtype")] = DtypeChoice.BFLOAT16,
    device: Annotated[str, typer.Option(help="where weights are built: cpu, cuda or cuda:N")] = "cpu",
    seed: Annotated[int, typer.Option(help="weight initialisation seed")] = 0,
    lora: Annotated[
        list[Path] | None,
        typer.Option(help="also write a random LoRA that fits the model at this .safetensors path (repeatable)"),
    ] = None,
    lora_format: Annotated[
        LoraFormatChoice, typer.Option(help="LoRA keys: diffusers (PEFT) or kohya (ComfyUI; Wan models only)")
    ] = LoraFormatChoice.DIFFUSERS,
    lora_rank: Annotated[int, typer.Option(min=1, help="LoRA rank")] = 4,
) -> None:
    """Write NAME loadable with its family's from_pretrained (one component in memory at a time), and LoRAs for it."""
    _known_or_exit(name)
    import torch

    from models.synthetic.writer import write_synthetic_model, write_synthetic_model_lora

    try:
        torch_device = torch.device(device)
    except RuntimeError as exc:
        typer.echo(f"error: --device {device!r} is not a device: use cpu, cuda or cuda:N", err=True)
        raise typer.Exit(2) from exc
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        typer.echo(f"error: --device {device!r} asks for CUDA, which this machine does not have", err=True)
        raise typer.Exit(2)
    for path in lora or []:
        if path.suffix != ".safetensors":
            typer.echo(f"error: --lora {str(path)!r} must end in .safetensors (the only LoRA format loaded)", err=True)
            raise typer.Exit(2)
    torch_dtype = getattr(torch, dtype.value)
    # LoRAs first: they need no weights (a meta skeleton), so a LoRA the model cannot take stops before the model
    for index, path in enumerate(lora or [], start=1):
        try:
            write_synthetic_model_lora(
                path,
                name,
                dtype=torch_dtype,
                seed=seed + index,
                scale=scale.value,
                rank=lora_rank,
                lora_format=lora_format.value,
            )
        except ValueError as exc:  # a model without a transformer, or kohya keys for a model that is not Wan
            typer.echo(f"error: --lora {str(path)!r}: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(str(path))
    write_synthetic_model(directory, name, dtype=torch_dtype, device=device, seed=seed, scale=scale.value)
    typer.echo(str(directory))
