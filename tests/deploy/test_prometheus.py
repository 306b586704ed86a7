"""deploy/prometheus: promtool accepts the rules and their unit tests pass; every rule queries only series the
worker (or Prometheus and KEDA) publish, names real error codes, and says why in its annotations."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from npc_video_client.contract import ErrorCode
from npc_video_client.names import Lane
from tests.deploy.artifacts import DEPLOY, is_worker_series, promtool, series_names
from worker.metrics import OUTCOME_LABELS

RULES = DEPLOY / "prometheus" / "alerts.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yaml"
# Beside the worker's own series: Prometheus's scrape health, and KEDA's view of the queue at zero replicas.
OTHER_SERIES = {"up", "keda_scaler_metrics_value"}
REQUIRED_ALERTS = {
    "NpcWorkerScrapeFailing",
    "NpcWorkerDefunct",
    "NpcWorkersAbsent",
    "NpcHeartbeatStale",
    "NpcRedisDown",
    "NpcBacklogWithoutReadyWorker",
    "NpcOldestPendingTooOld",
    "NpcDeadLettersIncreasing",
    "NpcJobFailuresHigh",
    "NpcJobsRejectedHigh",
    "NpcRetriesHigh",
}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules())} rules found" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check.get("exp_alerts")}
    assert fired == {rule["alert"] for rule in rules()}


def test_the_fleet_alerts_are_all_there() -> None:
    assert {rule["alert"] for rule in rules()} == REQUIRED_ALERTS


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_rule_queries_known_series_and_explains_itself(rule: dict[str, Any]) -> None:
    names = series_names(rule["expr"])
    assert names, "an alert on no series"
    unknown = sorted(name for name in names if not is_worker_series(name) and name not in OTHER_SERIES)
    assert unknown == [], f"series no worker publishes: {unknown}"
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    for key in ("summary", "description", "reason"):
        assert len(rule["annotations"][key].split()) >= 3, f"annotation {key} says too little"


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_rule_names_real_error_codes_outcomes_and_lanes(rule: dict[str, Any]) -> None:
    codes = {code.value for code in ErrorCode}
    for alternatives in re.findall(r'error_code=~"([^"]+)"', rule["expr"]):
        assert set(alternatives.split("|")) <= codes, alternatives
    for outcome in re.findall(r'outcome="([^"]+)"', rule["expr"]):
        assert outcome in {name for name, _ in OUTCOME_LABELS}
    for lane in re.findall(r'lane="([^"]+)"', rule["expr"]):
        assert lane in {lane.value for lane in Lane}
