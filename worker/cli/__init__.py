"""`npc-worker`: the command-line interface; importing this package registers every command of the worker on `app`,
and `main` adds the commands of plugins (entry point group `npc_worker.commands`, worker.cli.plugins) before it
runs: `npc-worker bench` comes from the top-level `bench` package that way."""

from __future__ import annotations

from worker.cli import contract, dead, demo, jobs, relay, serve, status, synthetic, watch
from worker.cli.app import app
from worker.cli.contract import contract_schemas
from worker.cli.plugins import load_plugins

__all__ = [
    "app",
    "contract",
    "contract_schemas",
    "dead",
    "demo",
    "jobs",
    "load_plugins",
    "main",
    "relay",
    "serve",
    "status",
    "synthetic",
    "watch",
]


def main() -> None:
    load_plugins(app)
    app()
