"""`npc-worker schema`: the JSON Schemas of the wire contract.

They are written for strict validators (Ajv's default strict mode, Python jsonschema) and for code generators
(json-schema-to-typescript): draft 2020-12 with `$schema` and `$id` on every file, and no keyword outside the
standard vocabulary. pydantic's tagged unions carry an OpenAPI `discriminator` keyword, which strict validators
refuse: the event union is a plain `oneOf` whose variants each require their own `type` constant instead. That union
lists this version's event types only: its description tells consumers to read `type` first and skip types they do
not know (a newer minor adds some), as docs/contract.md does.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from npc_video_client.contract import JobEnvelope, JobEvent, JobResult, JobState
from worker.cli.app import app

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:npc-video:schema:"  # a name, not a location: the files are shipped in docs/schema
EVENT_DESCRIPTION = (
    "An event of this contract version, told apart by `type`. Read `type` first: a type not listed here comes from a "
    "newer minor of the contract (minors add event types); skip such an event instead of validating it against this "
    "schema."
)


class StandardJsonSchema(GenerateJsonSchema):
    """pydantic's schemas without the OpenAPI-only `discriminator` keyword."""

    def tagged_union_schema(self, schema: core_schema.TaggedUnionSchema) -> JsonSchemaValue:
        generated = super().tagged_union_schema(schema)
        generated.pop("discriminator", None)
        return generated


class SchemaKind(StrEnum):
    ENVELOPE = "envelope"
    RESULT = "result"
    EVENT = "event"
    STATE = "state"
    ALL = "all"


def contract_schemas() -> dict[str, dict[str, Any]]:
    bodies = {
        "envelope": JobEnvelope.model_json_schema(schema_generator=StandardJsonSchema),
        "result": JobResult.model_json_schema(schema_generator=StandardJsonSchema),
        "event": TypeAdapter(JobEvent).json_schema(schema_generator=StandardJsonSchema),
        "state": JobState.model_json_schema(schema_generator=StandardJsonSchema, mode="serialization"),
    }
    bodies["event"]["title"] = "JobEvent"
    bodies["event"]["description"] = EVENT_DESCRIPTION
    return {name: {"$schema": DIALECT, "$id": f"{ID_BASE}{name}", **body} for name, body in bodies.items()}


@app.command()
def schema(
    kind: Annotated[SchemaKind, typer.Argument()] = SchemaKind.ALL,
    out: Annotated[Path | None, typer.Option(help="write <kind>.schema.json files into this folder instead")] = None,
) -> None:
    """Print the JSON Schema of the job envelope, the result, the events, the per-job state, or all four."""
    schemas = contract_schemas()
    chosen = schemas if kind is SchemaKind.ALL else {kind.value: schemas[kind.value]}
    if out is None:
        typer.echo(json.dumps(chosen if kind is SchemaKind.ALL else chosen[kind.value], indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, body in chosen.items():
        (out / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        typer.echo(str(out / f"{name}.schema.json"))
