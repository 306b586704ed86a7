"""deploy/k8s/scaledobject.yaml: the KEDA ScaledObject and its TriggerAuthentication, field by field (no schema
for CRDs offline). Per lane: a lag trigger and a pending trigger on the worker's real stream and group names,
with only metadata keys the redis-streams scaler reads, as strings; the target is the worker Deployment."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from npc_video_client.names import GROUP, LANES_BY_PRIORITY, Lane, StreamNames
from tests.deploy.artifacts import K8S, k8s_object

# The trigger metadata keys of KEDA's redis-streams scaler (pkg/scalers/redis_streams_scaler.go and the
# redis connection info it shares with the other Redis scalers).
SCALER_METADATA = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "usernameFromEnv",
    "passwordFromEnv",
    "stream",
    "consumerGroup",
    "pendingEntriesCount",
    "streamLength",
    "lagCount",
    "activationLagCount",
    "enableTLS",
    "unsafeSsl",
    "databaseIndex",
}
# What a TriggerAuthentication may hand the scaler.
AUTH_PARAMETERS = {"username", "password", "tls", "ca", "cert", "key", "keyPassword"}


def scaled_object() -> dict[str, Any]:
    return k8s_object("ScaledObject", "npc-worker")


def triggers() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = scaled_object()["spec"]["triggers"]
    return found


def lane_triggers(lane: Lane, key: str) -> list[dict[str, Any]]:
    stream = StreamNames().lane(lane)
    return [trigger for trigger in triggers() if trigger["metadata"]["stream"] == stream and key in trigger["metadata"]]


def test_api_version_and_target_is_the_worker_deployment() -> None:
    scaled = scaled_object()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    target = scaled["spec"]["scaleTargetRef"]
    deployment = k8s_object("Deployment", target["name"])
    assert target.get("kind", "Deployment") == deployment["kind"]
    assert target.get("apiVersion", "apps/v1") == deployment["apiVersion"]


def test_replica_bounds_and_cooldown() -> None:
    spec = scaled_object()["spec"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] >= 1
    assert spec["cooldownPeriod"] > 0 and spec["pollingInterval"] > 0
    assert "fallback" not in spec, "a fallback would resize the fleet exactly when Redis is unreadable (failover)"


def test_every_trigger_is_a_redis_streams_trigger_with_known_string_metadata() -> None:
    names = [trigger["name"] for trigger in triggers()]
    assert len(names) == len(set(names)), "KEDA requires unique trigger names"
    for trigger in triggers():
        assert trigger["type"] == "redis-streams"
        metadata = trigger["metadata"]
        assert set(metadata) <= SCALER_METADATA, sorted(set(metadata) - SCALER_METADATA)
        assert all(isinstance(value, str) for value in metadata.values()), "CRD metadata is a map of strings"
        assert metadata["consumerGroup"] == GROUP
        assert metadata["stream"] in StreamNames().lanes
        assert ("address" in metadata) != ("addressFromEnv" in metadata)


@pytest.mark.parametrize("lane", LANES_BY_PRIORITY, ids=str)
def test_each_lane_scales_on_its_lag_and_keeps_workers_for_its_pending_entries(lane: Lane) -> None:
    (lag,) = lane_triggers(lane, "lagCount")
    assert int(lag["metadata"]["lagCount"]) >= 1
    # A threshold above 0 would leave that many jobs waiting forever at zero replicas.
    assert lag["metadata"]["activationLagCount"] == "0"
    assert "pendingEntriesCount" not in lag["metadata"], "lagCount wins: KEDA would ignore pendingEntriesCount"
    (pending,) = lane_triggers(lane, "pendingEntriesCount")
    assert int(pending["metadata"]["pendingEntriesCount"]) >= 1


def test_more_urgent_lanes_scale_up_sooner() -> None:
    targets = [int(lane_triggers(lane, "lagCount")[0]["metadata"]["lagCount"]) for lane in LANES_BY_PRIORITY]
    assert targets == sorted(targets) and targets[0] < targets[-1]


def test_triggers_authenticate_from_the_redis_secret() -> None:
    references = {trigger["authenticationRef"]["name"] for trigger in triggers()}
    (reference,) = references
    authentication = k8s_object("TriggerAuthentication", reference)
    assert authentication["apiVersion"] == "keda.sh/v1alpha1"
    documents = yaml.safe_load_all((K8S / "secrets.example.yaml").read_text(encoding="utf-8"))
    secrets = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in documents}
    for target in authentication["spec"]["secretTargetRef"]:
        assert target["parameter"] in AUTH_PARAMETERS
        assert target["key"] in secrets[target["name"]], f"{target['name']} has no key {target['key']}"
