"""GPU health end to end: XIDs injected into the fake GPUs reach the node's slices and the kubelet.

The plugin's real health watcher takes the events from the fake backend's queue. Covers, on one
node with a pod running on one of its GPUs: application XIDs (13, and 74 added by
``--health-ignore-xids``) are counted in ``gpu_dra_xid_errors_total`` and change nothing; a
double-bit ECC error taints the GPU's devices ``gpu.dra.dev/xid=48:NoSchedule`` and the kubelet's
DRA manager marks the pod's device Unhealthy (from the health stream); another GPU that falls off
the bus is tainted ``gpu.dra.dev/gpu-lost`` and recovers by itself after a reset; an event for a
GPU the node does not have is counted as dropped; an admin's clear file removes the taint and the
pod's device is Healthy again.
"""

from __future__ import annotations

import functools

import pytest

from dra_driver.backends.fake import backend as fake
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, objects, scraping

pytestmark = pytest.mark.e2e

GPUS = "2xL4"


def _taints(client: kube.Kube, node: str, device: str) -> list[dict[str, str]] | None:
    for item in client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={node}"):
        for published in item["spec"].get("devices", []):
            if published["name"] == device:
                return [
                    {k: v for k, v in taint.items() if k != "timeAdded"}
                    for taint in published.get("taints", [])
                ]
    return None


def _has_taints(client: kube.Kube, node: str, device: str, wanted: list[dict[str, str]]) -> bool:
    return _taints(client, node, device) == wanted


def _pod_health(scenario: Scenario, pod: str, device: str) -> str | None:
    """The health of `device` in the pod's allocatedResourcesStatus (the kubelet's DRA manager
    fills it from the health stream), whose resource IDs are the CDI IDs: ``…-<device>``."""
    body = scenario.client.get(f"/api/v1/namespaces/{scenario.namespace}/pods/{pod}")
    found = [
        resource.get("health", "")
        for status in body.get("status", {}).get("containerStatuses", [])
        for allocated in status.get("allocatedResourcesStatus") or []
        for resource in allocated.get("resources") or []
        if resource["resourceID"].endswith(f"-{device}")
    ]
    return found[0] if found else None


def _metric(port: int, name: str, **labels: str) -> float:
    return scraping.value(port, name, **labels) or 0.0


def test_xids_taint_report_and_clear(scenario: Scenario, plugin_nodes: NodeFactory) -> None:
    client = scenario.client
    port = scraping.free_port()
    node = plugin_nodes(GPUS, extra_args=(f"--metrics-port={port}", "--health-ignore-xids=74"))
    gpus = fake.FakeBackend.from_spec(GPUS, node_name=node.name, state_dir=node.plugin_dir)
    scenario.schedule(node.name, "user", [objects.request("gpu", "gpu.dra.dev")])
    device = scenario.device("user")
    index = int(device.split("-")[1])
    used, other = gpus.gpus()[index].uuid, gpus.gpus()[1 - index].uuid
    kube.wait_for(
        lambda: _pod_health(scenario, "user", device) == "Healthy",
        what="the pod's device Healthy",
    )

    gpus.inject_xid(used, 13)
    gpus.inject_xid(used, 74)
    kube.wait_for(
        lambda: _metric(port, "gpu_dra_xid_errors_total", gpu=used, xid="74") == 1,
        what="the ignored XIDs counted",
    )
    assert _metric(port, "gpu_dra_xid_errors_total", gpu=used, xid="13") == 1
    assert _taints(client, node.name, device) == []

    gpus.inject_ecc(used, double_bit=True)
    xid_48 = [{"key": "gpu.dra.dev/xid", "value": "48", "effect": "NoSchedule"}]
    kube.wait_for(
        functools.partial(_has_taints, client, node.name, device, xid_48), what="XID 48 taint"
    )
    assert _taints(client, node.name, f"gpu-{index}-shared") == xid_48
    kube.wait_for(
        lambda: _pod_health(scenario, "user", device) == "Unhealthy",
        what="the pod's device Unhealthy",
    )
    assert _metric(port, "gpu_dra_ecc_errors_total", gpu=used, type="double") == 1

    gpus.lose_gpu(other)
    lost = [{"key": "gpu.dra.dev/gpu-lost", "effect": "NoSchedule"}]
    kube.wait_for(
        functools.partial(_has_taints, client, node.name, f"gpu-{1 - index}", lost),
        what="the lost GPU tainted",
    )
    gpus.reset_gpu(other)
    kube.wait_for(
        functools.partial(_has_taints, client, node.name, f"gpu-{1 - index}", []),
        what="the reset GPU recovered",
    )

    gpus.inject_xid("GPU-00000000-0000-0000-0000-000000000000", 79)
    kube.wait_for(
        lambda: _metric(port, "gpu_dra_health_events_dropped_total", reason="unknown-gpu") == 1,
        what="the event of another GPU dropped",
    )

    (node.plugin_dir / "health" / f"clear-{used}").touch()
    kube.wait_for(
        functools.partial(_has_taints, client, node.name, device, []), what="taint cleared"
    )
    kube.wait_for(
        lambda: _pod_health(scenario, "user", device) == "Healthy",
        what="the pod's device Healthy again",
    )
