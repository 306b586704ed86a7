"""The JSON Schemas shipped in docs/schema/ are exactly what the contract models produce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.cli import contract_schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


@pytest.mark.parametrize("name", ["envelope", "result", "event"])
def test_shipped_schema_matches_the_models(name):
    shipped = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert shipped == contract_schemas()[name], "regenerate: npc-worker schema --out docs/schema"
