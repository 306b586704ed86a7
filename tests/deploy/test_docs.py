"""docs/deploy.md: linked from the README, covers every artifact, and quotes the numbers the manifests hold
(a number changed in a manifest but not in its reasoning fails here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.artifacts import DEPLOY, ROOT, k8s_object

DOCS = ROOT / "docs" / "deploy.md"


def docs() -> str:
    return DOCS.read_text(encoding="utf-8")


def table_row(setting: str) -> str:
    rows = [line for line in docs().splitlines() if line.startswith(f"| `{setting}`")]
    assert len(rows) == 1, f"docs/deploy.md should explain `{setting}` in one table row, found {len(rows)}"
    return rows[0]


def test_readme_links_it_from_operating_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    operating = readme.split("## Operating it", 1)[1].split("\n## ", 1)[0]
    assert "(docs/deploy.md)" in operating


def test_sections_and_the_acl_placeholder() -> None:
    headings = set(re.findall(r"^##+ (.+)$", docs(), flags=re.MULTILINE))
    assert {"Containers", "Kubernetes", "KEDA", "Prometheus and Grafana", "TLS", "ACL user"} <= headings
    assert {"Compose: the whole stack without a GPU", "Model weights on a volume", "GPU node selection"} <= headings
    assert {"Scale to zero", "How lag maps to replicas"} <= headings


def test_every_artifact_is_mentioned() -> None:
    artifacts = [path.relative_to(ROOT) for path in DEPLOY.rglob("*") if path.is_file()]
    artifacts += [ROOT.joinpath(name).relative_to(ROOT) for name in ("Dockerfile", "Dockerfile.cuda", "compose.yaml")]
    text = docs()
    missing = [str(path) for path in artifacts if path.name not in text]
    assert missing == []


def pod() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_object("Deployment", "npc-worker")["spec"]
    return spec


def container() -> dict[str, Any]:
    (only,) = pod()["template"]["spec"]["containers"]
    return dict(only)


def keda() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_object("ScaledObject", "npc-worker")["spec"]
    return spec


def probe(name: str) -> str:
    settings = container()[name]
    return f"{settings['periodSeconds']} s x {settings['failureThreshold']}"


def env_value(name: str) -> str:
    (value,) = [entry["value"] for entry in container()["env"] if entry["name"] == name]
    return str(value)


def lag_targets() -> str:
    """As the docs write them: `high 2, normal 8, low 32`."""
    lag = [trigger["metadata"] for trigger in keda()["triggers"] if "lagCount" in trigger["metadata"]]
    return ", ".join(f"{meta['stream'].rsplit(':', 1)[1]} {meta['lagCount']}" for meta in lag)


def pending_target() -> str:
    (target,) = {
        meta["pendingEntriesCount"]
        for meta in (t["metadata"] for t in keda()["triggers"])
        if "pendingEntriesCount" in meta
    }
    return f"| {target} |"


QUOTED: dict[str, Callable[[], str]] = {
    "startupProbe": lambda: probe("startupProbe"),
    "readinessProbe": lambda: probe("readinessProbe"),
    "livenessProbe": lambda: probe("livenessProbe"),
    "terminationGracePeriodSeconds": lambda: str(pod()["template"]["spec"]["terminationGracePeriodSeconds"]),
    "progressDeadlineSeconds": lambda: str(pod()["progressDeadlineSeconds"]),
    "NPC_WORKER_HEARTBEAT_TIMEOUT_S": lambda: env_value("NPC_WORKER_HEARTBEAT_TIMEOUT_S"),
    "pollingInterval": lambda: f"{keda()['pollingInterval']} s",
    "cooldownPeriod": lambda: f"{keda()['cooldownPeriod']} s",
    "minReplicaCount": lambda: f"| {keda()['minReplicaCount']} |",
    "maxReplicaCount": lambda: f"| {keda()['maxReplicaCount']} |",
    "lagCount": lag_targets,
    "pendingEntriesCount": pending_target,
}


@pytest.mark.parametrize("setting", QUOTED)
def test_the_numbers_in_the_docs_are_the_manifests(setting: str) -> None:
    assert QUOTED[setting]() in table_row(setting)
