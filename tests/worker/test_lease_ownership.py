"""One owner for lease state: no module but the lease registry (worker/queue/leases.py) changes a lease's scheduling
fields. Lease exposes them read-only; this keeps anyone from reaching past that into the private fields."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from worker.queue.leases import Lease

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "worker" / "queue" / "leases.py"
PRIVATE_FIELDS = {field.name for field in fields(Lease) if field.name.startswith("_")}
SOURCES = sorted(
    path
    for folder in ("worker", "models", "pipelines", "bench", "integrations", "scripts")
    if (ROOT / folder).is_dir()
    for path in (ROOT / folder).rglob("*.py")
)


def writes_to_lease_fields(tree: ast.AST) -> list[str]:
    """Assignments (plain, augmented, annotated, deleted) to a private lease field, and setattr with its name."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and part.attr in PRIVATE_FIELDS:
                    found.append(f"line {part.lineno}: .{part.attr}")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "setattr":
            names = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
            found.extend(f"line {node.lineno}: setattr {name}" for name in names if name in PRIVATE_FIELDS)
    return found


def test_the_lease_fields_are_the_private_scheduling_state():
    assert {"_due", "_skips", "_running", "_solo", "_waits", "_job_id"} <= PRIVATE_FIELDS


def test_the_rule_sees_a_write():
    assert writes_to_lease_fields(ast.parse("lease._due = 1\nlease._skips += 1\nsetattr(lease, '_running', True)"))


def test_no_module_but_the_registry_writes_lease_state():
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in SOURCES
        if path != OWNER and (found := writes_to_lease_fields(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert offenders == {}
    assert writes_to_lease_fields(ast.parse(OWNER.read_text(encoding="utf-8")))  # the owner does write them
