"""The kubelet plugin through API-server outages and a restarted kubelet, on a real control plane.

Covers, with kube-apiserver hung (SIGSTOP) and killed (SIGKILL, then started again) while the node
is busy (a pod being deleted, so its claim is unprepared; a pod just created, so its claim is
prepared; a prepared claim deleted from the API, so the sweep should release it; a GPU turning
unhealthy, so the slices should change): during the outage a NodePrepareResources call gets, for
each claim, "the API server is unreachable" before its deadline, and the claim already prepared
stays prepared; afterwards the same plugin process is still serving, every claim converged (the
deleted pod's claim unprepared, the new pod's prepared by the fake kubelet's retry, the deleted
claim swept), the checkpoint holds only completed claims, each with its CDI spec and no spec
without one, the node's slices are whole again with the unhealthy GPU tainted, and the errors were
counted in ``gpu_dra_api_errors_total`` (prepare and sweep). A restarted fake kubelet registers
the plugin again and gets its pods prepared.

These tests run on a control plane of their own, so that an apiserver that does not come back
cannot take other scenarios down with it.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from dra_driver.backends.fake import backend as fake
from dra_driver.cdi import naming as cdi_naming
from dra_driver.checkpoint import model
from e2e.conftest import Cluster, NodeFactory, Scenario, _plane
from e2e.harness import controlplane, kube, nodeagents, objects
from kubeletplugin import serving
from tests.kubeletplugin import pluginserver

pytestmark = pytest.mark.e2e

GPUS = "4xL4"
OUTAGE = 16.0
"""Seconds the API server stays out: longer than one claim GET's timeout (10 s) plus a sweep
interval (5 s), so that a sweep and a prepare both meet the outage, not just its end."""
CLAIMS = "/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims"


@pytest.fixture(scope="module")
def control_plane(
    bin_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A control plane for this module only (it overrides the session's)."""
    yield from _plane(bin_dir, tmp_path_factory, "outage-cluster", "")


def _stubs(node: nodeagents.PluginNode) -> pluginserver.Stubs:
    dra = serving.dra_socket(node.plugin_dir, driver=objects.DRIVER, pod_uid=node.pod_uid)
    return pluginserver.Stubs(dra, node.registry_dir / "unused.sock")


def _claim_ref(client: kube.Kube, ns: str, name: str) -> dict[str, str]:
    uid = client.get(f"{CLAIMS.format(ns=ns)}/{name}")["metadata"]["uid"]
    return {"namespace": ns, "name": name, "uid": uid}


def _allocate_by_hand(client: kube.Kube, ns: str, name: str, *, node: str, device: str) -> None:
    """A claim allocated to `device` of `node` without a pod: only the plugin will know it."""
    claim = objects.create_claim(client, ns, name, [objects.request("gpu", "gpu.dra.dev")])
    claim["status"] = {
        "allocation": {
            "devices": {
                "results": [
                    {"request": "gpu", "driver": objects.DRIVER, "pool": node, "device": device}
                ]
            },
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            },
        }
    }
    client.request("PUT", f"{CLAIMS.format(ns=ns)}/{name}/status", claim)


def _specs(node: nodeagents.PluginNode) -> set[str]:
    uids = (cdi_naming.claim_uid_of_file(path.name) for path in node.cdi_dir.glob("*.json"))
    return {uid for uid in uids if uid}


def _metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def _tainted(client: kube.Kube, node: str, device: str) -> bool:
    for item in client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={node}"):
        for published in item["spec"].get("devices", []):
            if published["name"] == device:
                return bool(published.get("taints"))
    return False


def _prepared(node: nodeagents.PluginNode, ns: str, pod: str) -> dict[str, Any] | None:
    return node.prepared_record(ns, pod)


@pytest.mark.parametrize("how", ["hang", "kill"])
def test_the_plugin_lives_through_an_api_server_outage_and_converges(
    scenario: Scenario, plugin_nodes: NodeFactory, how: Literal["hang", "kill"]
) -> None:
    plane = scenario.plane
    assert isinstance(plane, controlplane.ControlPlane)
    client, ns = scenario.client, scenario.namespace
    metrics_port = controlplane.free_port()
    node = plugin_nodes(GPUS, extra_args=("--resync-interval=2", f"--metrics-port={metrics_port}"))
    plugin = node.children[-1]
    for pod in ("kept", "leaving"):
        scenario.schedule(node.name, pod, [objects.request("gpu", "gpu.dra.dev")])
        kube.wait_for(functools.partial(_prepared, node, ns, pod), what=f"{pod} prepared")
    taken = {objects.allocated_devices(client, ns, pod)[0] for pod in ("kept", "leaving")}
    free = sorted({f"gpu-{i}" for i in range(4)} - taken)
    _allocate_by_hand(client, ns, "swept", node=node.name, device=free[0])
    swept = _claim_ref(client, ns, "swept")
    kept = _claim_ref(client, ns, "kept")
    stubs = _stubs(node)
    try:
        answer = stubs.v1.prepare(swept)
        assert answer.claims[swept["uid"]].error == ""
        gpus = fake.FakeBackend.from_spec(GPUS, node_name=node.name, state_dir=node.plugin_dir)
        unhealthy = int(free[1].split("-")[1])

        client.delete(f"{CLAIMS.format(ns=ns)}/swept")
        client.delete(f"/api/v1/namespaces/{ns}/pods/leaving")
        scenario.schedule(node.name, "arriving", [objects.request("gpu", "gpu.dra.dev")])
        arriving = _claim_ref(client, ns, "arriving")
        with plane.apiserver_down(how):
            started = time.monotonic()
            gpus.inject_xid(gpus.gpus()[unhealthy].uuid, 79, "GPU has fallen off the bus")
            answer = stubs.v1.prepare(kept, arriving, timeout=12.0)
            assert time.monotonic() - started < 12.0
            for ref in (kept, arriving):
                assert answer.claims[ref["uid"]].error.startswith(
                    "the API server is unreachable"
                ), answer
            assert kept["uid"] in _specs(node), "a failed GET leaves a prepared claim alone"
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - started)))
            assert plugin.running(), plugin.log_tail()
    finally:
        stubs.close()

    assert plugin.running(), plugin.log_tail()
    kube.wait_for(
        functools.partial(_prepared, node, ns, "arriving"), what="arriving prepared", timeout=120
    )
    kube.wait_for(
        lambda: client.missing(f"/api/v1/namespaces/{ns}/pods/leaving"),
        what="leaving unprepared and gone",
        timeout=120,
    )
    arriving_uid = arriving["uid"]
    expected = {kept["uid"], arriving_uid}
    kube.wait_for(lambda: _specs(node) == expected, what="only kept, arriving prepared", timeout=60)
    assert node.checkpointed() == dict.fromkeys(expected, model.PrepareState.COMPLETED)
    kube.wait_for(node.published, what="the node's slices whole", timeout=60)
    kube.wait_for(
        functools.partial(_tainted, client, node.name, f"gpu-{unhealthy}"),
        what="the unhealthy GPU tainted after the outage",
        timeout=60,
    )
    assert _metric(metrics_port, "gpu_dra_api_errors_total", component="prepare") >= 1
    assert _metric(metrics_port, "gpu_dra_api_errors_total", component="sweep") >= 1
    assert plugin.running()
    assert node.children[-1] is plugin, "the same plugin process throughout"


def test_a_restarted_kubelet_registers_the_plugin_again(
    scenario: Scenario, plugin_nodes: NodeFactory
) -> None:
    client, ns = scenario.client, scenario.namespace
    node = plugin_nodes(GPUS)
    kubelet, plugin = node.children
    kubelet.stop()
    node.start_kubelet()  # a new plugins.json: only a new registration can mark the plugin
    plugins = kube.wait_for(
        functools.partial(_registered, node), what="the plugin registered again", timeout=60
    )
    assert plugins[0]["endpoint"].endswith(f"dra-{node.pod_uid}.sock")
    kube.wait_for(node.published, what="slices republished after the kubelet's wipe", timeout=60)
    scenario.schedule(node.name, "after-restart", [objects.request("gpu", "gpu.dra.dev")])
    kube.wait_for(
        functools.partial(_prepared, node, ns, "after-restart"), what="pod prepared", timeout=60
    )
    client.delete(f"/api/v1/namespaces/{ns}/pods/after-restart")
    kube.wait_for(lambda: not _specs(node), what="pod unprepared", timeout=60)
    assert plugin.running()


def _registered(node: nodeagents.PluginNode) -> list[dict[str, Any]] | None:
    try:
        listed = json.loads((node.records_dir / "plugins.json").read_text()).get("plugins") or []
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    ours = [p for p in listed if p["driver"] == objects.DRIVER and p["registered"]]
    return ours or None
