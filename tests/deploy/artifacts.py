"""Shared by the deployment tests: where the artifacts are, the metric names they may query, a PromQL scanner,
the setting names the environment may use, and the external tools (which must be installed: no skipping)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

# The series the worker's /metrics exposes (the names the lead's metrics module publishes).
COUNTERS = {
    "npc_jobs_total",
    "npc_job_retries_total",
    "npc_duplicate_entries_total",
    "npc_model_disk_loads_total",
    "npc_model_swaps_total",
    "npc_model_offloads_total",
    "npc_lora_adapter_loads_total",
    "npc_lora_adapter_evictions_total",
}
HISTOGRAMS = {"npc_job_phase_seconds", "npc_model_load_seconds", "npc_model_swap_seconds"}
GAUGES = {
    "npc_queue_depth",
    "npc_oldest_pending_age_seconds",
    "npc_dead_letters",
    "npc_jobs_in_flight",
    "npc_heartbeat_age_seconds",
    "npc_redis_up",
    "npc_worker_state",
    "npc_device_memory_bytes",
    "npc_build_info",
}
WORKER_SERIES = (
    COUNTERS | GAUGES | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_count", "_sum")}
)
STANDARD_PREFIXES = ("process_", "python_")  # prometheus_client's default collectors

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_PROMQL_WORDS |= {"offset", "inf", "nan"}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.$])[A-Za-z_:][A-Za-z0-9_:]*")


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords, label
    names (inside {} or a grouping clause), durations or strings."""
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in _PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def is_worker_series(name: str) -> bool:
    return name in WORKER_SERIES or name.startswith(STANDARD_PREFIXES)


def setting_env_names() -> set[str]:
    """Every environment variable the worker reads: NPC_WORKER_ + a Settings field, upper-cased."""
    return {f"NPC_WORKER_{field.upper()}" for field in Settings.model_fields}


def unknown_worker_env(names: list[str]) -> list[str]:
    known = setting_env_names()
    return sorted(name for name in names if name.startswith("NPC_WORKER_") and name not in known)


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """Every object of every manifest under deploy/k8s (the kustomization file itself excluded)."""
    return [
        (path, document)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml_documents(path)
    ]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in k8s_objects() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"deploy/k8s should hold exactly one {kind} named {name}, found {len(found)}"
    return found[0]


def tool(name: str, how: str) -> str:
    """An external tool the tests need; missing means the set-up is incomplete (scripts/setup.sh), not a skip."""
    beside_python = Path(sys.executable).with_name(name)
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    assert found, f"`{name}` is missing: {how} (scripts/setup.sh installs it)"
    return found


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = tool("promtool", "apt-get install prometheus (Debian ships promtool in it)")
    return subprocess.run([binary, *arguments], capture_output=True, text=True, timeout=60, check=False)


IMAGE_UID = 10001  # the USER of both Dockerfiles and runAsUser of the Deployment


def dockerfile_instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile at the root, in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{name} ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def dockerfile_env(name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions(name):
        if instruction == "ENV":
            values.update(dict(re.findall(r"(\w+)=(\S+)", arguments)))
    return values
