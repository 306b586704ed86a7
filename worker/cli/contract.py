"""`npc-worker schema`: the JSON Schemas of the wire contract."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter

from npc_video_client.contract import JobEnvelope, JobEvent, JobResult
from worker.cli.app import app


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
