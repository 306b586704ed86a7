"""deploy/k8s/group: the worker-group variant (one group of four GPUs per pod) valid against the Kubernetes
schemas, in step with the one-GPU Deployment where it should be (security, probes, Secrets) and apart where it must
be (its GPUs, its command, shared memory for NCCL, its own prefix and KEDA triggers), with a catalog it can split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from models.catalog import load_catalog
from models.parallel import check_splittable
from npc_video_client.names import LANES_BY_PRIORITY, StreamNames
from tests.deploy.artifacts import K8S, unknown_worker_env, yaml_documents

GROUP = K8S / "group"
GROUP_SIZE = 4


def objects() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(GROUP.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml_documents(path):
            found[document["kind"]] = document
    return found


def container() -> dict[str, Any]:
    (worker,) = objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return worker


def env() -> dict[str, Any]:
    return {item["name"]: item for item in container()["env"]}


@pytest.mark.parametrize("version", ["1.30.0", "1.35.0"])
def test_the_group_objects_validate_against_the_kubernetes_schemas(version: str) -> None:
    for kind in ("Deployment", "PodDisruptionBudget"):
        kubernetes_validate.validate(objects()[kind], version, strict=True)


def test_kustomization_lists_its_files_and_the_catalog_config_map() -> None:
    kustomization = yaml.safe_load((GROUP / "kustomization.yaml").read_text(encoding="utf-8"))
    assert all((GROUP / resource).is_file() for resource in kustomization["resources"])
    (generator,) = kustomization["configMapGenerator"]
    volumes = {volume["name"]: volume for volume in objects()["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["catalog"]["configMap"]["name"] == generator["name"]
    assert kustomization["namespace"] == "npc-video"


def test_one_group_of_four_gpus_per_pod_led_on_the_probed_port() -> None:
    resources = container()["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == GROUP_SIZE
    assert container()["args"] == ["--devices", "all", "--group", str(GROUP_SIZE)]  # after ENTRYPOINT npc-worker serve
    assert env()["NPC_WORKER_HTTP_PORT"]["value"] == "8080"  # the leader's (group 0): what the probes ask
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"]["port"] == "http"
    mounts = {mount["name"]: mount["mountPath"] for mount in container()["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in objects()["Deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert mounts["shm"] == "/dev/shm" and volumes["shm"]["emptyDir"]["medium"] == "Memory"


def test_settings_are_real_and_the_group_has_its_own_prefix() -> None:
    assert unknown_worker_env(list(env())) == []
    assert env()["NPC_WORKER_PREFIX"]["value"] == "npc-quality"
    assert float(env()["NPC_WORKER_GROUP_TIMEOUT_S"]["value"]) > 0


def test_keda_scales_the_group_deployment_on_its_own_lanes() -> None:
    scaled = objects()["ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == objects()["Deployment"]["metadata"]["name"]
    streams = {trigger["metadata"]["stream"] for trigger in scaled["spec"]["triggers"]}
    assert streams == {StreamNames("npc-quality").lane(lane) for lane in LANES_BY_PRIORITY}  # never the warm lane
    assert all(trigger["authenticationRef"]["name"] == "npc-worker-redis" for trigger in scaled["spec"]["triggers"])


def test_the_group_catalog_holds_only_what_a_group_of_four_can_split(tmp_path: Path) -> None:
    """The whole catalog check on a copy whose LoRA root exists here, then the group's own refusal check."""
    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "anime_style.safetensors").write_bytes(b"")
    local = tmp_path / "catalog.toml"
    text = (GROUP / "catalog.toml").read_text(encoding="utf-8")
    local.write_text(text.replace('"/models/loras"', f'"{loras}"'), encoding="utf-8")
    check_splittable(load_catalog(local), GROUP_SIZE, "cuda")
