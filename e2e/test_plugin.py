"""The kubelet plugin end to end: real scheduler, the kubelet's own DRA code, our plugin process.

Covers: pods claiming a whole GPU, a MIG slice and a shared fraction are scheduled, prepared by
our plugin through the fake kubelet's real registration and DRA calls, and each container's
resolved CDI edits name the allocated fake device (the MIG slice as a MIG device created at the
allocated placement, the share with its memory limit and quota config); deleting the pods
unprepares them: CDI specs gone, MIG instance destroyed. The plugin publishes its own slices and
republishes them after the kubelet wipes them; a rolling update hands over to the new plugin pod;
an unhealthy GPU (an injected XID) gets its devices tainted, is skipped by the scheduler, and is
used again once an admin cleared it.
"""

from __future__ import annotations

import functools

import pytest

from dra_driver.backends.fake import backend as fake
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, nodeagents, objects

pytestmark = pytest.mark.e2e

GPUS = "2xA100-40GB,1xL4"


@pytest.fixture
def plugin_node(plugin_nodes: NodeFactory) -> nodeagents.PluginNode:
    return plugin_nodes(GPUS, extra_args=("--resync-interval=1",))


def _env(record: dict[str, object]) -> dict[str, str]:
    containers = record["containers"]
    assert isinstance(containers, dict)
    env = containers["main"]["env"]
    return dict(item.split("=", 1) for item in env)


def test_whole_gpu_mig_slice_and_share_are_prepared_and_unprepared(
    scenario: Scenario, plugin_node: nodeagents.PluginNode
) -> None:
    client, ns, node = scenario.client, scenario.namespace, plugin_node.name
    mig = [
        objects.request(
            "mig",
            "mig.gpu.dra.dev",
            selectors=['device.attributes["gpu.dra.dev"].profile == "3g.20gb"'],
        )
    ]
    share = [objects.request("share", "shared.gpu.dra.dev", capacity={"memory": "4Gi"})]
    scenario.schedule(node, "whole", [objects.request("gpu", "gpu.dra.dev")])
    scenario.schedule(node, "slice", mig)
    scenario.schedule(node, "share", share)
    gpus = fake.FakeBackend.from_spec(GPUS, node_name=node, state_dir=plugin_node.plugin_dir)
    uuids = [gpu.uuid for gpu in gpus.gpus()]
    records = {}
    for pod in ("whole", "slice", "share"):
        records[pod] = kube.wait_for(
            functools.partial(plugin_node.prepared_record, ns, pod),
            what=f"{pod} prepared by the plugin",
            timeout=60,
        )
    (whole,) = objects.allocated_devices(client, ns, "whole")
    index = int(whole.split("-")[1])
    env = _env(records["whole"])
    assert env[f"GPU_DRA_GPU_{index}_UUID"] == uuids[index]

    (slice_device,) = objects.allocated_devices(client, ns, "slice")
    parent = int(slice_device.split("-")[1])
    prefix = "GPU_DRA_" + slice_device.upper().replace("-", "_")
    env = _env(records["slice"])
    assert env[f"{prefix}_PARENT_UUID"] == uuids[parent]
    instances = gpus.status(uuids[parent]).mig_instances
    assert [i.uuid for i in instances] == [env[f"{prefix}_UUID"]]
    assert instances[0].profile_name == "3g.20gb"

    (share_result,) = objects.allocation(client, ns, "share")
    prefix = "GPU_DRA_" + share_result["device"].upper().replace("-", "_")
    env = _env(records["share"])
    assert env[f"{prefix}_MEMORY_LIMIT"] == str(4 * 1024**3)
    assert env[f"{prefix}_SHARE_ID"] == share_result["shareID"]
    assert "GPUQ_CONFIG" not in env  # the quota library finds the claim's config by itself
    assert len(list(plugin_node.cdi_dir.glob("*.json"))) == 3

    for pod in ("whole", "slice", "share"):
        client.delete(f"/api/v1/namespaces/{ns}/pods/{pod}")
    kube.wait_for(
        lambda: not list(plugin_node.cdi_dir.glob("*.json")),
        what="CDI specs removed by unprepare",
        timeout=60,
    )
    assert gpus.status(uuids[parent]).mig_instances == ()


def _prepared_and_unprepared(scenario: Scenario, node: nodeagents.PluginNode, pod: str) -> None:
    client, ns = scenario.client, scenario.namespace
    scenario.schedule(node.name, pod, [objects.request("gpu", "gpu.dra.dev")])
    kube.wait_for(
        functools.partial(node.prepared_record, ns, pod), what=f"{pod} prepared", timeout=60
    )
    client.delete(f"/api/v1/namespaces/{ns}/pods/{pod}")
    kube.wait_for(
        lambda: not list(node.cdi_dir.glob("*.json")), what=f"{pod} unprepared", timeout=60
    )


def test_the_plugin_republishes_after_the_kubelet_wipes_its_slices(
    scenario: Scenario, plugin_node: nodeagents.PluginNode
) -> None:
    kubelet = plugin_node.children[0]
    kubelet.stop()
    before = {s["metadata"]["name"] for s in scenario.client.items(objects.SLICES)}
    plugin_node.start_kubelet()  # its start-up wipes the node's slices
    kube.wait_for(plugin_node.published, what="slices republished", timeout=60)
    after = {s["metadata"]["name"] for s in scenario.client.items(objects.SLICES)}
    assert after - before, "the wiped slices were published again (with new names)"
    _prepared_and_unprepared(scenario, plugin_node, "after-wipe")


def test_a_rolling_update_hands_over_without_a_gap(
    scenario: Scenario, plugin_node: nodeagents.PluginNode
) -> None:
    old = plugin_node.children[1]
    plugin_node.start_plugin(pod_uid="plugin-pod-2")
    sockets = sorted(p.name for p in plugin_node.registry_dir.iterdir())
    assert sockets == [
        f"{objects.DRIVER}-plugin-pod-1-reg.sock",
        f"{objects.DRIVER}-plugin-pod-2-reg.sock",
    ]
    old.stop()
    assert [p.name for p in plugin_node.registry_dir.iterdir()] == [
        f"{objects.DRIVER}-plugin-pod-2-reg.sock"
    ]
    assert plugin_node.published()
    _prepared_and_unprepared(scenario, plugin_node, "after-update")


def _tainted(client: kube.Kube, node: str, device: str) -> bool:
    for item in client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={node}"):
        for published in item["spec"].get("devices", []):
            if published["name"] == device:
                return bool(published.get("taints"))
    return False


def test_an_unhealthy_gpu_is_tainted_and_skipped_until_it_recovers(
    scenario: Scenario, plugin_node: nodeagents.PluginNode
) -> None:
    client, node = scenario.client, plugin_node.name
    gpus = fake.FakeBackend.from_spec(GPUS, node_name=node, state_dir=plugin_node.plugin_dir)
    l4 = gpus.gpus()[2].uuid
    gpus.inject_xid(l4, 79, "GPU has fallen off the bus")
    kube.wait_for(functools.partial(_tainted, client, node, "gpu-2"), what="gpu-2 tainted")
    assert _tainted(client, node, "gpu-2-shared")
    assert not _tainted(client, node, "gpu-0")
    on_l4 = f'device.attributes["gpu.dra.dev"].uuid == "{l4}"'
    scenario.schedule(node, "wants-l4", [objects.request("gpu", "gpu.dra.dev", selectors=[on_l4])])
    scenario.waits("wants-l4")
    (plugin_node.plugin_dir / "health" / f"clear-{l4}").touch()  # an admin clears it
    kube.wait_for(
        lambda: not _tainted(client, node, "gpu-2"), what="gpu-2 taint removed", timeout=60
    )
    assert scenario.device("wants-l4") == "gpu-2"
