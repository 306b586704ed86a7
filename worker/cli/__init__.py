"""`npc-worker`: the command-line interface; importing this package registers every command on `app`."""

from __future__ import annotations

from worker.cli import bench, contract, dead, demo, jobs, relay, serve, status, synthetic, watch
from worker.cli.app import app
from worker.cli.contract import contract_schemas

__all__ = [
    "app",
    "bench",
    "contract",
    "contract_schemas",
    "dead",
    "demo",
    "jobs",
    "main",
    "relay",
    "serve",
    "status",
    "synthetic",
    "watch",
]


def main() -> None:
    app()
