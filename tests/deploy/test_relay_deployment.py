"""deploy/k8s/relay-deployment.yaml: valid against the Kubernetes schemas, applied by the kustomization, one relay at a
time, running a command line the real CLI accepts with settings that exist, as the image's non-root user."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from tests.deploy.artifacts import IMAGE_UID, K8S, ROOT, k8s_object, unknown_worker_env
from worker.cli import app
from worker.relay.pixsim7 import DEFAULT_CHANNEL

KUBERNETES_VERSIONS = ["1.30.0", "1.35.0"]
NAME = "npc-relay-pixsim7"


def deployment() -> dict[str, Any]:
    return k8s_object("Deployment", NAME)


def container() -> dict[str, Any]:
    (only,) = deployment()["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env(name: str) -> dict[str, Any]:
    (entry,) = [item for item in container()["env"] if item["name"] == name]
    return dict(entry)


def relay_command() -> Any:
    """`npc-worker relay` as the CLI parses it."""
    return typer.main.get_command(app).commands["relay"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_it_validates_against_the_kubernetes_schemas(version: str) -> None:
    kubernetes_validate.validate(deployment(), version, strict=True)


def test_the_kustomization_applies_it_with_the_workers_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "relay-deployment.yaml" in kustomization["resources"]
    (image,) = kustomization["images"]
    assert container()["image"] == image["name"]


def test_one_relay_at_a_time_so_events_stay_in_order() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "nvidia.com/gpu" not in str(container()["resources"])


def test_the_command_is_one_the_cli_accepts() -> None:
    command = container()["command"]
    assert command[:2] == ["npc-worker", "relay"]
    context = relay_command().make_context("relay", list(command[2:]))  # raises on an unknown option
    assert context.params["relay_format"] == "pixsim7"
    assert context.params["channel"] == DEFAULT_CHANNEL
    assert context.params["consumer"] == "relay"  # the same name in every pod: a new pod resumes the last one's entries


def test_settings_and_secrets_are_real() -> None:
    names = [item["name"] for item in container()["env"]]
    assert unknown_worker_env(names) == []
    redis_url = env("NPC_WORKER_REDIS_URL")["valueFrom"]["secretKeyRef"]
    secrets = list(yaml.safe_load_all((K8S / "secrets.example.yaml").read_text(encoding="utf-8")))
    (secret,) = [doc for doc in secrets if doc["metadata"]["name"] == redis_url["name"]]
    assert redis_url["key"] in secret["stringData"]
    publish = env("NPC_RELAY_PUBLISH_URL")["valueFrom"]["secretKeyRef"]
    assert publish["optional"] is True  # without pixsim7's own Redis the relay publishes on the workers'
    (option,) = [param for param in relay_command().params if param.name == "publish_url"]
    assert option.envvar == "NPC_RELAY_PUBLISH_URL"


def test_it_runs_as_the_image_user_on_a_read_only_root() -> None:
    security = deployment()["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == IMAGE_UID == security["runAsGroup"]
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_integration_doc_and_the_deploy_doc_name_it() -> None:
    assert "relay-deployment.yaml" in (ROOT / "docs" / "integrations" / "pixsim7.md").read_text(encoding="utf-8")
    assert "relay-deployment.yaml" in (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
