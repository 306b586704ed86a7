"""The JSON Schemas shipped in docs/schema/ are exactly what the contract models produce, byte for byte as
`npc-worker schema --out docs/schema` writes them (tests/contract runs them through strict validators)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worker.cli import app, contract_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
KINDS = ["envelope", "result", "event", "state"]


@pytest.mark.parametrize("name", KINDS)
def test_shipped_schema_matches_the_models(name):
    shipped = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert shipped == contract_schemas()[name], "regenerate: npc-worker schema --out docs/schema"


def test_the_command_writes_the_shipped_files_unchanged(tmp_path):
    done = CliRunner().invoke(app, ["schema", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    for name in KINDS:
        written = (tmp_path / f"{name}.schema.json").read_text(encoding="utf-8")
        assert written == (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"), name


@pytest.mark.parametrize("name", KINDS)
def test_every_schema_names_its_dialect_and_id(name):
    schema = contract_schemas()[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:npc-video:schema:{name}"


def test_the_event_schema_tells_consumers_to_read_type_first():
    description = contract_schemas()["event"]["description"]
    assert "Read `type` first" in description and "skip such an event" in description
