"""docs/architecture.md stays true: its stage table names the stage modules in order (each says which stage it is),
its thread table names every thread the code starts, and its layers are import-linter's."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
STAGE_ROW = re.compile(r"^\| (\d) \| (\S+\.py) \|", re.MULTILINE)


def section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else None]


def table_rows(text: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    return rows[2:]  # past the header and its rule


def test_every_stage_module_exists_and_says_which_stage_it_is():
    stages = STAGE_ROW.findall(section("A job's stages"))
    assert [number for number, _module in stages] == ["1", "2", "3", "4", "5"]
    for number, module in stages:
        docstring = ast.get_docstring(ast.parse((ROOT / module).read_text(encoding="utf-8"))) or ""
        assert docstring.startswith(f"Stage {number}, "), module


def thread_names_in_code() -> set[str]:
    """Names given to threads and thread pools in the service's code; f-strings become their pattern (batch-N).
    The demo (worker/demo.py) runs the device loop on a thread of its own: that is the device thread."""
    names = set()
    threads = ("Thread", "ThreadPoolExecutor")
    for folder in ("worker", "pipelines"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "worker" / "demo.py":
                continue
            for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(call, ast.Call) or not ast.unparse(call.func).endswith(threads):
                    continue
                for keyword in call.keywords:
                    if keyword.arg in ("name", "thread_name_prefix"):
                        pattern = ast.unparse(keyword.value).removeprefix("f").strip("'\"")
                        names.add(pattern.replace("{index}", "N").replace("{host}", "HOST"))
    return names


def test_the_thread_table_names_every_thread_the_code_starts():
    documented = {row[0] for row in table_rows(section("Threads"))}
    in_code = thread_names_in_code()
    assert in_code, "no thread names found: the scan is broken"
    assert in_code - {"device"} <= documented, in_code - documented
    assert documented - in_code == {"device"}  # the caller's own thread, not started by the worker


def test_the_layers_are_import_linters():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(contract["layers"] for contract in contracts if contract["type"] == "layers")
    documented = re.search(r"^layers: (.+)$", section("Layers"), re.MULTILINE)
    assert documented is not None and documented.group(1).split(" > ") == layers
