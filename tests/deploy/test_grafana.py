"""deploy/grafana/npc-worker.json: an importable dashboard on a `datasource` variable whose queries parse
(promtool) and select only series the worker publishes, and that shows every one of them somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.artifacts import COUNTERS, DEPLOY, GAUGES, HISTOGRAMS, is_worker_series, promtool, series_names

DASHBOARD = DEPLOY / "grafana" / "npc-worker.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What Grafana substitutes before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$model": ".*", "$preset": ".*"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_datasource_is_a_template_variable_every_query_uses(dashboard: dict[str, Any]) -> None:
    datasource = variables(dashboard)["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"] and all(target["datasource"] == DATASOURCE for target in panel["targets"])
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


def test_queries_select_only_worker_series(dashboard: dict[str, Any]) -> None:
    for expr in queries(dashboard):
        names = series_names(expr)
        assert names, f"no series in {expr}"
        assert all(is_worker_series(name) for name in names), f"{sorted(names)} in {expr}"
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
            assert match is not None and is_worker_series(match.group(1)), variable["name"]


def test_every_worker_series_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    shown = {name for expr in queries(dashboard) for name in series_names(expr)}
    expected = COUNTERS | GAUGES | {f"{name}_bucket" for name in HISTOGRAMS}
    assert expected <= shown, sorted(expected - shown)


def test_queries_parse(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses every query, as recording rules, once Grafana's variables are substituted."""
    exprs = []
    for query in queries(dashboard):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"an unknown Grafana variable in {query}"
        exprs.append(expr)
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    rules_file = tmp_path / "dashboard-queries.yaml"
    rules_file.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_layout_fits_the_grid_and_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
