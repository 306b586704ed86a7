"""compose.yaml: valid against the compose specification, Redis with AOF, SeaweedFS as S3 with its bucket, the
worker from the CPU Dockerfile on a catalog whose model the `models` service builds, every service that keeps
running health-checked, start order by health, and only real settings in the environment."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from models.catalog import load_catalog
from npc_video_client.contract import JobEnvelope
from tests.deploy.artifacts import DEPLOY, ROOT, tool, unknown_worker_env

COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def flags(command: list[str]) -> dict[str, str]:
    return dict(arg.lstrip("-").split("=", 1) for arg in command if arg.startswith("-") and "=" in arg)


def mounted_file(service: dict[str, Any], target: str) -> Path:
    volume: str
    for volume in service["volumes"]:
        source, mount, *_ = volume.split(":")
        if mount == target:
            return ROOT / source
    raise AssertionError(f"nothing is mounted at {target}")


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    checker = tool("check-jsonschema", "pip install check-jsonschema (the dev extra)")
    completed = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "seaweedfs", "models", "worker"}


def test_redis_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert redis["image"].startswith("redis:7"), "the KEDA lag trigger (XINFO GROUPS lag) needs Redis 7+"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name in ("redis", "seaweedfs", "worker"):
        check = compose["services"][name]["healthcheck"]
        assert check["test"][0] == "CMD" and check["retries"] >= 3, name
    worker_check = " ".join(compose["services"]["worker"]["healthcheck"]["test"])
    assert "/healthz" in worker_check


def test_worker_starts_after_its_dependencies_are_ready(compose: dict[str, Any]) -> None:
    assert compose["services"]["worker"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "seaweedfs": {"condition": "service_healthy"},
        "models": {"condition": "service_completed_successfully"},
    }


def test_worker_is_built_from_the_cpu_dockerfile(compose: dict[str, Any]) -> None:
    for name in ("worker", "models"):
        build = compose["services"][name]["build"]
        assert build["dockerfile"] == "Dockerfile" and (ROOT / build["context"] / "Dockerfile").is_file()
    assert compose["services"]["worker"]["image"] == compose["services"]["models"]["image"]


def test_worker_environment_uses_real_settings_only(compose: dict[str, Any]) -> None:
    assert unknown_worker_env(list(compose["services"]["worker"]["environment"])) == []


def test_worker_stores_in_the_seaweedfs_bucket_with_its_credentials(compose: dict[str, Any]) -> None:
    seaweed = compose["services"]["seaweedfs"]
    worker = compose["services"]["worker"]["environment"]
    assert seaweed["command"][0] == "mini" and seaweed["image"].startswith("chrislusf/seaweedfs:")
    storage = urlparse(worker["NPC_WORKER_STORAGE_URL"])
    assert storage.scheme == "s3" and storage.netloc == flags(seaweed["command"])["bucket"]
    endpoint = urlparse(worker["NPC_WORKER_S3_ENDPOINT_URL"])
    assert (endpoint.hostname, endpoint.port) == ("seaweedfs", 8333)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert worker[key] == seaweed["environment"][key]
    public = urlparse(worker["NPC_WORKER_PUBLIC_BASE_URL"])
    assert f"127.0.0.1:{public.port}:8888" in seaweed["ports"], "public URLs are the filer's, published on the host"
    assert public.path == f"/buckets/{storage.netloc}"


def test_worker_catalog_names_the_model_the_models_service_builds(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    catalog = load_catalog(mounted_file(worker, worker["environment"]["NPC_WORKER_CATALOG"]))
    built = compose["services"]["models"]["command"][1]
    assert compose["services"]["models"]["entrypoint"] == ["npc-worker", "synthetic", "write"]
    assert catalog.models[catalog.defaults.model].path == built
    assert "models:/models:ro" in worker["volumes"] and "models:/models" in compose["services"]["models"]["volumes"]


def test_example_job_is_a_valid_envelope_for_a_catalog_npc(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    catalog = load_catalog(mounted_file(worker, worker["environment"]["NPC_WORKER_CATALOG"]))
    job = JobEnvelope.model_validate(json.loads((DEPLOY / "compose" / "job.json").read_text(encoding="utf-8")))
    assert job.params.npc_id in catalog.npcs and job.params.npc_base_image is None
