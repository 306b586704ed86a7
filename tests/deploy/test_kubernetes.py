"""deploy/k8s: every built-in object valid against the Kubernetes schemas (kubernetes-validate, offline, strict),
and the Deployment in step with the image (uid, writable paths, port), the settings, the catalog and the
Secrets it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from models.catalog import load_catalog
from tests.deploy.artifacts import IMAGE_UID, K8S, dockerfile_env, k8s_object, k8s_objects, unknown_worker_env

# The oldest minor still offered by the big managed services, and a recent one.
KUBERNETES_VERSIONS = ["1.30.0", "1.35.0"]
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor"}  # CRDs: checked field by field elsewhere


def built_in_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc) for path, doc in k8s_objects()]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_against_the_kubernetes_schemas(version: str) -> None:
    checked = 0
    for label, document in built_in_objects():
        if document["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            raise AssertionError(f"{label} is invalid for Kubernetes {version}: {path}: {exc.message}") from exc
        checked += 1
    assert checked >= 6  # Namespace, PVC, Deployment, PDB, two Secrets


def test_kustomization_lists_existing_files_and_names_the_deployed_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secrets.example.yaml" not in kustomization["resources"], "placeholder Secrets are never applied"
    (generator,) = kustomization["configMapGenerator"]
    assert all((K8S / name).is_file() for name in generator["files"])
    (image,) = kustomization["images"]
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image["name"]
    namespaced = [doc for _, doc in k8s_objects() if doc["kind"] != "Namespace"]
    assert kustomization["namespace"] == k8s_object("Namespace", kustomization["namespace"])["metadata"]["name"]
    assert all(doc["metadata"].get("namespace", kustomization["namespace"]) == "npc-video" for doc in namespaced)


def deployment() -> dict[str, Any]:
    return k8s_object("Deployment", "npc-worker")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    return dict(only)


def env(name: str) -> dict[str, Any]:
    (entry,) = [item for item in container()["env"] if item["name"] == name]
    return dict(entry)


def test_one_gpu_per_pod_and_no_replica_count_beside_keda() -> None:
    assert container()["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "replicas" not in deployment()["spec"], "KEDA owns the replica count; apply would reset it"


def test_probes_use_the_worker_endpoints_with_a_cold_start_budget() -> None:
    spec = container()
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = spec["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 15 * 60, "a cold 14B load from a volume"
    ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
    assert all(probe["httpGet"]["port"] in ports for probe in (spec["livenessProbe"], spec["readinessProbe"], startup))
    assert ports["http"] == int(env("NPC_WORKER_HTTP_PORT")["value"])


def test_grace_period_outlasts_the_longest_job() -> None:
    assert pod_spec()["terminationGracePeriodSeconds"] >= 20 * 60
    assert deployment()["spec"]["progressDeadlineSeconds"] >= 20 * 60


def test_runs_as_the_image_user_on_a_read_only_root_with_writable_mounts() -> None:
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == IMAGE_UID == security["runAsGroup"]
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert container()["securityContext"]["capabilities"]["drop"] == ["ALL"]
    writable = {mount["mountPath"] for mount in container()["volumeMounts"] if not mount.get("readOnly")}
    image_env = dockerfile_env("Dockerfile.cuda")
    assert {
        image_env["NPC_WORKER_DATA_DIR"],
        image_env["NPC_WORKER_STORAGE_URL"].removeprefix("file://"),
        "/tmp",
    } <= writable


def test_environment_names_are_real_settings() -> None:
    assert unknown_worker_env([item["name"] for item in container()["env"]]) == []


def secret_keys(name: str) -> set[str]:
    documents = yaml.safe_load_all((K8S / "secrets.example.yaml").read_text(encoding="utf-8"))
    (secret,) = [doc for doc in documents if doc["metadata"]["name"] == name]
    return set(secret["stringData"])


def test_credentials_come_from_secret_keys_that_exist() -> None:
    for name in ("NPC_WORKER_REDIS_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        reference = env(name)["valueFrom"]["secretKeyRef"]
        assert reference["key"] in secret_keys(reference["name"]), name
        assert "value" not in env(name)


def test_weights_come_read_only_from_the_claim_and_the_catalog_from_the_config_map(tmp_path: Path) -> None:
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    mounts = {mount["name"]: mount for mount in container()["volumeMounts"]}
    claim = volumes["models"]["persistentVolumeClaim"]
    assert claim["readOnly"] is True and mounts["models"]["readOnly"] is True
    pvc = k8s_object("PersistentVolumeClaim", claim["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadOnlyMany"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    (generator,) = kustomization["configMapGenerator"]
    assert volumes["catalog"]["configMap"]["name"] == generator["name"]
    catalog_path = env("NPC_WORKER_CATALOG")["value"]
    (catalog_file,) = generator["files"]
    assert catalog_path == f"{mounts['catalog']['mountPath']}/{catalog_file}"

    # The whole catalog check (references, LoRA files) on a copy whose LoRA root exists here.
    text = (K8S / catalog_file).read_text(encoding="utf-8")
    models_root = mounts["models"]["mountPath"]
    loras = tmp_path / "loras"
    loras.mkdir()
    local = tmp_path / catalog_file
    local.write_text(text.replace(f'"{models_root}/loras"', f'"{loras}"'), encoding="utf-8")
    for name in ("lightx2v_4step.safetensors", "anime_style.safetensors"):
        (loras / name).write_bytes(b"")
    catalog = load_catalog(local)
    assert all(model.path.startswith(f"{models_root}/") for model in catalog.models.values())


def test_disruption_budget_and_pod_monitor_select_the_worker_pods() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = k8s_object("PodDisruptionBudget", "npc-worker")["spec"]
    assert budget["maxUnavailable"] == 1 and budget["selector"]["matchLabels"].items() <= labels.items()
    monitor = k8s_object("PodMonitor", "npc-worker")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] in {port["name"] for port in container()["ports"]} and endpoint["path"] == "/metrics"
