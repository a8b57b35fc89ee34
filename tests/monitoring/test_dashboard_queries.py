"""The Grafana dashboard and the alerts read only metrics that exist, in PromQL that parses.

Covers: the chart's ConfigMap carries the dashboard file as it is, with the sidecar's label
(``grafana_dashboard: "1"``), in the namespace asked for; every query of the dashboard (panels
and the node variable) parses (``promtool check rules``, with Grafana's variables given values)
and reads only metrics the plugin's code exports, or dcgm-exporter's fields the join uses; the
alerts' expressions read only exported metrics, ``up`` and kube-state-metrics' readiness; the
dashboard shows each kind of figure the docs promise (occupancy per node and GPU, the info
metric per claim, share usage, dcgm-exporter's usage per pod). A renamed metric fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.monitoring import chart, exported, promql, promtool

pytestmark = pytest.mark.timeout(900)  # the first run builds promtool and helm (minutes)

DASHBOARD = chart.CHART / "dashboards" / "gpu-dra-driver.json"
DCGM_FIELDS = {"DCGM_FI_DEV_FB_USED", "DCGM_FI_PROF_GR_ENGINE_ACTIVE"}
"""dcgm-exporter's fields the dashboard joins (default fields of its collector CSV)."""
OUTSIDE = {"up", "kube_pod_container_status_ready"}
"""Metrics of Prometheus itself and of kube-state-metrics that the alerts read."""


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"])
            assert found, variable["definition"]
            exprs.append(found.group(1))
    return exprs


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_config_map_carries_the_dashboard_for_the_sidecar() -> None:
    values = {"monitoring": {"dashboard": {"enabled": True, "namespace": "monitoring"}}}
    config_map = chart.only(chart.render(values), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert json.loads(config_map["data"]["gpu-dra-driver.json"]) == json.loads(
        DASHBOARD.read_text()
    )
    assert "ConfigMap" not in {obj["kind"] for obj in chart.render({})}


def test_every_query_parses_and_reads_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    queries = [promql.grafana_free(expr) for expr in _queries(dashboard)]
    rules = [{"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(queries)]
    promtool.check_rules({"groups": [{"name": "dashboard", "rules": rules}]})
    known = exported.names() | DCGM_FIELDS
    for query in queries:
        assert promql.metric_names(query) <= known, query


def test_the_alerts_read_only_exported_metrics() -> None:
    objects = chart.render({"monitoring": {"prometheusRule": {"enabled": True}}})
    groups = chart.only(objects, "PrometheusRule")["spec"]["groups"]
    known = exported.names() | OUTSIDE
    for rule in (rule for group in groups for rule in group["rules"]):
        assert promql.metric_names(rule["expr"]) <= known, rule["alert"]


def test_the_dashboard_shows_occupancy_and_usage_per_node_gpu_and_claim(
    dashboard: dict[str, Any],
) -> None:
    used = set().union(*(promql.metric_names(promql.grafana_free(q)) for q in _queries(dashboard)))
    assert {
        "gpu_dra_prepared_devices",
        "gpu_dra_prepared_device_info",
        "gpu_dra_share_memory_used_bytes",
        "gpu_dra_share_memory_limit_bytes",
        "gpu_dra_share_refused_allocations_total",
        "gpu_dra_xid_errors_total",
    } <= used
    assert used >= DCGM_FIELDS
    by_node = [q for q in _queries(dashboard) if 'node=~"$node"' in q]
    assert len(by_node) == len(_queries(dashboard)) - 1  # all but the variable's own query
