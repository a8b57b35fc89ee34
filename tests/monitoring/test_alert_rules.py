"""The chart's alerts, rendered by Helm and run by Prometheus' own rule engine (promtool).

Covers: the PrometheusRule's ``spec`` passes ``promtool check rules``; each alert fires on a
crafted series that shows its trouble (with the labels that say where) and stays quiet on
neighbours that do not (another component, an ignored XID, a counter that stopped rising, a
ready plugin, another namespace); an XID counter that appears with its first event fires at once
(``increase`` alone cannot see a series' first sample); each alert's runbook is a section of
docs/monitoring.md and each such section has an alert; nothing is rendered by default, and the
PodMonitor keeps the info metric's labels (honorLabels) and names the node.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.monitoring import chart, docs, promtool

pytestmark = pytest.mark.timeout(900)  # the first run builds promtool and helm (minutes)

PLUGIN_POD = "gpu-dra-driver-kubelet-plugin-x7k2p"
CLAIM = {"namespace": "team-a", "claim": "train", "claim_uid": "u1", "device": "gpu-0-shared",
         "gpu_uuid": "GPU-1", "node": "n1"}  # fmt: skip


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    objects = chart.render({"monitoring": {"prometheusRule": {"enabled": True}}})
    spec: dict[str, Any] = chart.only(objects, "PrometheusRule")["spec"]
    return spec


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _alerts(at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "exp_alerts": [{"exp_labels": dict(found)} for found in labels]}


# Each case: alert, input series, then (evaluation time, labels of every alert firing then).
CASES: list[tuple[str, list[dict[str, str]], list[dict[str, Any]]]] = [
    (
        "GpuDraXidErrors",
        [
            _series("gpu_dra_xid_errors_total", {"node": "n1", "gpu": "GPU-1", "xid": "79"}, "_x25 1x40"),
            _series("gpu_dra_xid_errors_total", {"node": "n1", "gpu": "GPU-1", "xid": "13"}, "_x25 1x40"),
            _series("gpu_dra_xid_errors_total", {"node": "n2", "gpu": "GPU-2", "xid": "48"}, "1x40 2x30"),
        ],
        [
            _alerts("15m"),
            _alerts("27m", {"severity": "warning", "node": "n1", "gpu": "GPU-1", "xid": "79"}),
            _alerts("43m", {"severity": "warning", "node": "n2", "gpu": "GPU-2", "xid": "48"}),
            _alerts("60m"),
        ],
    ),
    (
        "GpuDraShareNearMemoryLimit",
        [
            _series("gpu_dra_share_memory_used_bytes", CLAIM, "950x30"),
            _series("gpu_dra_share_memory_limit_bytes", CLAIM, "1000x30"),
            _series("gpu_dra_share_memory_used_bytes", {**CLAIM, "claim_uid": "u2"}, "500x30"),
            _series("gpu_dra_share_memory_limit_bytes", {**CLAIM, "claim_uid": "u2"}, "1000x30"),
        ],
        [_alerts("5m"), _alerts("12m", {"severity": "warning", **CLAIM})],
    ),
    (
        "GpuDraQuotaRefusals",
        [
            _series("gpu_dra_share_refused_allocations_total", CLAIM, "0x5 3x30"),
            _series("gpu_dra_share_refused_allocations_total", {**CLAIM, "claim_uid": "u2"}, "2x30"),
        ],
        [_alerts("4m"), _alerts("8m", {"severity": "warning", **CLAIM}), _alerts("20m")],
    ),
    (
        "GpuDraPrepareErrors",
        [
            _series("gpu_dra_claim_errors_total", {"node": "n1", "operation": "prepare"}, "0+1x30"),
            _series("gpu_dra_claim_errors_total", {"node": "n2", "operation": "prepare"}, "5x30"),
        ],
        [_alerts("10m"), _alerts("20m", {"severity": "warning", "node": "n1", "operation": "prepare"})],
    ),
    (
        "GpuDraSlicesNotPublished",
        [
            _series("gpu_dra_api_errors_total", {"node": "n1", "component": "publisher"}, "0+1x30"),
            _series("gpu_dra_api_errors_total", {"node": "n2", "component": "sweep"}, "0+1x30"),
        ],
        [_alerts("10m"), _alerts("20m", {"severity": "warning", "node": "n1"})],
    ),
    (
        "GpuDraSliceFieldsDropped",
        [
            _series("gpu_dra_slice_dropped_fields", {"node": "n1"}, "2x30"),
            _series("gpu_dra_slice_dropped_fields", {"node": "n2"}, "0x30"),
        ],
        [_alerts("3m"), _alerts("10m", {"severity": "warning", "node": "n1"})],
    ),
    (
        "GpuDraPluginDown",
        [
            _series("up", {"namespace": chart.NAMESPACE, "pod": PLUGIN_POD, "node": "n1"}, "0x30"),
            _series("up", {"namespace": chart.NAMESPACE, "pod": PLUGIN_POD + "x", "node": "n2"}, "1x30"),
            _series("up", {"namespace": "other", "pod": PLUGIN_POD, "node": "n3"}, "0x30"),
        ],
        [
            _alerts("3m"),
            _alerts("10m", {"severity": "critical", "namespace": chart.NAMESPACE, "pod": PLUGIN_POD, "node": "n1"}),
        ],
    ),
    (
        "GpuDraPluginNotReady",
        [
            _series("kube_pod_container_status_ready", {"namespace": chart.NAMESPACE, "pod": PLUGIN_POD, "container": "plugin"}, "0x30"),
            _series("kube_pod_container_status_ready", {"namespace": chart.NAMESPACE, "pod": PLUGIN_POD + "x", "container": "plugin"}, "1x30"),
            _series("kube_pod_container_status_ready", {"namespace": "other", "pod": PLUGIN_POD, "container": "plugin"}, "0x30"),
        ],
        [
            _alerts("10m"),
            _alerts("20m", {"severity": "critical", "namespace": chart.NAMESPACE, "pod": PLUGIN_POD}),
        ],
    ),
    (
        "GpuDraDriverRootNotReady",
        [
            _series("gpu_dra_driver_root_ready", {"node": "n1"}, "0x30"),
            _series("gpu_dra_driver_root_ready", {"node": "n2"}, "1x30"),
        ],
        [_alerts("5m"), _alerts("15m", {"severity": "critical", "node": "n1"})],
    ),
]  # fmt: skip


def test_the_rules_pass_promtools_checker(rules: dict[str, Any]) -> None:
    output = promtool.check_rules(rules)
    assert f"SUCCESS: {len(CASES)} rules found" in output


@pytest.mark.parametrize(("alert", "series", "checks"), CASES, ids=[case[0] for case in CASES])
def test_each_alert_fires_on_its_trouble_and_not_otherwise(
    rules: dict[str, Any],
    alert: str,
    series: list[dict[str, str]],
    checks: list[dict[str, Any]],
) -> None:
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{**check, "alertname": alert} for check in checks],
        }
    ]
    promtool.run_tests(rules, tests, annotations=False)


def test_every_alert_has_its_runbook_section_and_every_section_an_alert(
    rules: dict[str, Any],
) -> None:
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(alerts) == {case[0] for case in CASES}
    sections = docs.anchors(docs.MONITORING)
    for name, rule in alerts.items():
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/monitoring.md"
        assert anchor == name.lower(), name
        assert anchor in sections, name
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    text = docs.section(docs.MONITORING.read_text(), "Alerts")
    assert set(docs.subheadings(text)) == set(alerts)


def test_monitoring_is_off_by_default_and_the_pod_monitor_keeps_the_claims_labels() -> None:
    kinds = {obj["kind"] for obj in chart.render({})}
    assert not kinds & {"PodMonitor", "PrometheusRule"}
    objects = chart.render({"monitoring": {"podMonitor": {"enabled": True}}})
    (endpoint,) = chart.only(objects, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["honorLabels"] is True
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} in (
        endpoint["relabelings"]
    )
