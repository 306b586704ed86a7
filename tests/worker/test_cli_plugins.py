"""Commands from plugins (entry point group `npc_worker.commands`): `bench` comes from the bench package that way, and
a plugin that cannot load ends its own command with one line while every other command keeps working."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import typer

from worker.cli.plugins import GROUP, load_plugins

BROKEN_ENTRY_POINTS = """[npc_worker.commands]
explode = broken_plugin:register
vanished = no_such_package.cli:register
"""


def npc_worker(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "worker", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def broken_plugins(root: Path) -> Path:
    """A real installed distribution (a .dist-info folder on the path) with two entry points: one whose module
    fails on import (a missing dependency), one whose package is gone (uninstalled, its metadata left)."""
    info = root / "broken_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS, encoding="utf-8")
    (root / "broken_plugin.py").write_text(
        'raise ImportError("broken_plugin needs the frobnicator package")\n', encoding="utf-8"
    )
    return root


def test_bench_is_registered_through_the_entry_point_group() -> None:
    [bench] = [entry for entry in entry_points(group=GROUP) if entry.name == "bench"]
    assert bench.value == "bench.cli:register"
    listed = npc_worker("--help")
    assert listed.returncode == 0, listed.stderr
    assert "bench" in listed.stdout and "Benchmark presets" in listed.stdout


def test_loading_twice_registers_each_command_once() -> None:
    app = typer.Typer()

    @app.command()
    def serve() -> None:
        """A command of the application itself."""

    assert "bench" in load_plugins(app)
    assert load_plugins(app) == []
    names = [command.name or command.callback.__name__ for command in app.registered_commands if command.callback]
    assert names.count("bench") == 1


def test_a_plugin_that_fails_on_import_ends_its_command_with_one_line(tmp_path: Path) -> None:
    path = broken_plugins(tmp_path)
    done = npc_worker("explode", "--out", "x", "more", extra_path=path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: the command 'explode' cannot be loaded: plugin broken_plugin:register")
    assert "from broken-plugin 1.0" in line
    assert "ImportError: broken_plugin needs the frobnicator package" in line
    assert "reinstall the package that provides it" in line


def test_an_uninstalled_plugin_ends_its_command_with_one_line_and_the_rest_still_works(tmp_path: Path) -> None:
    path = broken_plugins(tmp_path)
    done = npc_worker("vanished", extra_path=path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "plugin no_such_package.cli:register" in line
    assert "ModuleNotFoundError: No module named 'no_such_package'" in line

    listed = npc_worker("--help", extra_path=path)
    assert listed.returncode == 0, listed.stderr
    assert "unavailable: ImportError" in listed.stdout and "bench" in listed.stdout
    schemas = npc_worker("schema", "--help", extra_path=path)
    assert schemas.returncode == 0 and "Traceback" not in schemas.stderr
