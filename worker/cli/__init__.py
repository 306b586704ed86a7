"""`npc-worker`: the command-line interface; importing this package registers every command on `app`."""

from __future__ import annotations

from worker.cli import bench, contract, demo, jobs, models, serve, synthetic
from worker.cli.app import app
from worker.cli.contract import contract_schemas

__all__ = ["app", "bench", "contract", "contract_schemas", "demo", "jobs", "main", "models", "serve", "synthetic"]


def main() -> None:
    app()
