"""Commands that other packages add to `npc-worker` (e.g. `bench`, from the top-level `bench` package), found through
the entry point group `npc_worker.commands`: each entry point names a callable that takes the Typer app and
registers its commands on it. The worker never imports those packages itself.

A plugin that cannot be loaded (its package uninstalled while its entry point stayed, a dependency missing, an
error on import) does not break the other commands: its name becomes a command that ends with one line naming the
plugin, the reason and what to do, and exit status 2.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer

from worker.cli.exits import fail

GROUP = "npc_worker.commands"


def _distribution(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _unavailable(app: typer.Typer, entry_point: EntryPoint, exc: BaseException) -> None:
    """Register `name` as a command that explains why it cannot run."""
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    message = (
        f"the command {entry_point.name!r} cannot be loaded: plugin {entry_point.value} "
        f"(entry point group {GROUP}, from {_distribution(entry_point)}) failed with {reason}; "
        f"reinstall the package that provides it (from a clone: pip install ./clients/python .)"
    )

    def unavailable() -> None:
        fail(message)

    app.command(
        entry_point.name,
        help=f"(unavailable: {reason})",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(unavailable)


def _name(command: Any) -> str | None:
    """A registered command's name as Typer derives it when none was given."""
    if command.name:
        return str(command.name)
    callback = command.callback
    return callback.__name__.replace("_", "-") if callback is not None else None


def load_plugins(app: typer.Typer, group: str = GROUP) -> list[str]:
    """Let every entry point of `group` register its commands on `app`, once per name; returns the names
    loaded now (a name already registered is skipped, so calling this twice is harmless)."""
    registered = {_name(command) for command in app.registered_commands}
    registered |= {group.name for group in app.registered_groups if group.name}
    loaded = []
    for entry_point in entry_points(group=group):
        if entry_point.name in registered:
            continue
        registered.add(entry_point.name)
        try:
            register: Any = entry_point.load()
            register(app)
        except Exception as exc:  # a broken plugin must not break npc-worker: its command reports why instead
            _unavailable(app, entry_point, exc)
            continue
        loaded.append(entry_point.name)
    return loaded
