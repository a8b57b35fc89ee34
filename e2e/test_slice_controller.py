"""The ResourceSlice controller against the real kube-apiserver.

Covers: a fake 8×A100-40GB node's full-mode pool is published and read back exactly as sent; a
second publish writes nothing; a removed GPU shrinks the pool with a generation bump and no
slice of the old generation left; a slice deleted by hand comes back, and one edited by hand is
restored, while the controller runs; capability detection tells a full server from one without
partitionable devices and consumable capacity; on such a server the dropped fields are reported
(log and metric) and a republish does not loop; a server without ``resource.k8s.io/v1`` is talked
to in v1beta2 or v1beta1 (devices wrapped in ``basic``) with the same result.
"""

from __future__ import annotations

import functools
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import config

from controller import capabilities, rest, slicediff, slicesync
from dra_driver import backends, inventory
from dra_driver.slices import building, settings, splitting
from e2e.conftest import Cluster, Scenario
from e2e.harness import controlplane, kube, objects

pytestmark = pytest.mark.e2e


def _desired(
    node: str, gpus: str, mode: settings.Mode = settings.Mode.FULL
) -> list[splitting.SliceContent]:
    backend = backends.open_backend(f"fake:{gpus}", node_name=node)
    groups = building.build(
        inventory.discover(backend, node_name=node), settings.PublishSettings(mode=mode)
    )
    return splitting.split(groups)


def _sync(plane: Cluster, client: kube.Kube, node: str) -> slicesync.SliceSync:
    uid = client.get(f"/api/v1/nodes/{node}")["metadata"]["uid"]
    owner = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": True}
    api = rest.Rest(config.new_client_from_config(str(plane.kubeconfig)))
    target = slicediff.Target(driver=objects.DRIVER, node_name=node, pool=node, owner=owner)
    return slicesync.SliceSync(api, target)


@pytest.fixture
def node(scenario: Scenario) -> str:
    name = f"{scenario.namespace}-slices"
    objects.create_node(scenario.client, name)
    scenario.nodes.append(name)
    return name


def _stored(sync: slicesync.SliceSync) -> list[dict[str, Any]]:
    return sorted(sync.list(), key=lambda s: str(s["metadata"]["name"]))


def test_publish_read_back_republish_shrink(scenario: Scenario, node: str) -> None:
    sync = _sync(scenario.plane, scenario.client, node)
    desired = _desired(node, "8xA100-40GB")
    first = sync.publish(desired)
    assert (first.generation, len(first.creates), first.writes) == (1, 9, 9)
    stored = _stored(sync)
    sent = splitting.specs(desired, driver=objects.DRIVER, node_name=node, pool=node, generation=1)
    assert [s["spec"] for s in stored] == sent
    assert sync.dropped_fields == set()
    assert all(s["metadata"]["ownerReferences"][0]["name"] == node for s in stored)

    writes = sync.client.writes
    again = sync.publish(desired)
    assert again.writes == 0
    assert sync.client.writes == writes

    smaller = sync.publish(_desired(node, "7xA100-40GB"))
    assert smaller.generation == 2
    stored = _stored(sync)
    assert len(stored) == 8
    assert {s["spec"]["pool"]["generation"] for s in stored} == {2}
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in stored} == {8}
    devices = {d["name"] for s in stored for d in s["spec"].get("devices", [])}
    assert "gpu-6" in devices
    assert "gpu-7" not in devices


def _pool_complete(sync: slicesync.SliceSync, count: int, gone: str) -> bool:
    stored = sync.list()
    names = {s["metadata"]["name"] for s in stored}
    return len(stored) == count and gone not in names


def test_the_running_controller_repairs_drift(scenario: Scenario, node: str) -> None:
    sync = _sync(scenario.plane, scenario.client, node)
    desired = _desired(node, "2xL4")
    stop = threading.Event()
    thread = threading.Thread(target=sync.run, args=(lambda: desired, stop), kwargs={"resync": 5})
    thread.start()
    try:
        kube.wait_for(lambda: len(sync.list()) == 3, what="pool published")
        victim = _stored(sync)[1]["metadata"]["name"]
        scenario.client.delete(f"{slicesync.PATH}/{victim}")
        kube.wait_for(
            functools.partial(_pool_complete, sync, 3, victim), what="deleted slice recreated"
        )
        edited = _stored(sync)[2]
        edited["spec"]["devices"] = edited["spec"]["devices"][:1]
        scenario.client.request("PUT", f"{slicesync.PATH}/{edited['metadata']['name']}", edited)
        kube.wait_for(
            lambda: all(len(s["spec"].get("devices", [1, 1])) == 2 for s in sync.list()),
            what="edited slice restored",
        )
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_capabilities_of_a_full_server(scenario: Scenario, node: str) -> None:
    api = rest.Rest(config.new_client_from_config(str(scenario.plane.kubeconfig)))
    found = capabilities.detect(api, driver=objects.DRIVER, node_name=node)
    assert found.mode is settings.Mode.FULL
    assert found.api_version == "v1"
    assert "v1" in found.served
    assert api.get(slicesync.PATH, fieldSelector=f"spec.nodeName={node}")["items"] == []


def test_a_server_without_the_features_is_detected_and_does_not_loop(
    compat_scenario: Scenario,
) -> None:
    name = f"{compat_scenario.namespace}-slices"
    objects.create_node(compat_scenario.client, name)
    compat_scenario.nodes.append(name)
    api = rest.Rest(config.new_client_from_config(str(compat_scenario.plane.kubeconfig)))
    found = capabilities.detect(api, driver=objects.DRIVER, node_name=name)
    assert (found.partitionable_devices, found.consumable_capacity) == (False, False)
    assert found.mode is settings.Mode.COMPAT
    sync = _sync(compat_scenario.plane, compat_scenario.client, name)
    reported: list[int] = []
    sync.on_dropped = reported.append
    sync.publish(_desired(name, "1xA100-40GB"))
    assert reported[-1] == len(sync.dropped_fields) > 0
    assert "spec.sharedCounters" in sync.dropped_fields
    assert any("allowMultipleAllocations" in path for path in sync.dropped_fields)
    assert sync.publish(_desired(name, "1xA100-40GB")).writes == 0
    compat = sync.publish(_desired(name, "1xA100-40GB", settings.Mode.COMPAT))
    # One slice rewritten and the other deleted: the generation may stay (the Go rule).
    assert (len(compat.updates), len(compat.deletes), len(compat.creates)) == (1, 1, 0)
    (stored,) = sync.list()
    assert stored["spec"]["pool"]["resourceSliceCount"] == 1
    assert [d["name"] for d in stored["spec"]["devices"]] == ["gpu-0"]


@pytest.fixture(scope="module")
def beta_plane(
    bin_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[controlplane.ControlPlane]:
    """An API server without resource.k8s.io/v1 (as before 1.34): only v1beta2 and v1beta1."""
    plane = controlplane.ControlPlane(
        bin_dir=bin_dir,
        work_dir=tmp_path_factory.mktemp("beta-cluster"),
        runtime_config="resource.k8s.io/v1=false,resource.k8s.io/v1beta2=true,"
        "resource.k8s.io/v1beta1=true",
    )
    with plane:
        yield plane


@pytest.mark.parametrize("version", ["v1beta2", "v1beta1"])
def test_older_api_versions_are_talked_when_v1_is_not_served(
    beta_plane: controlplane.ControlPlane, version: str
) -> None:
    client = kube.Kube(
        server=beta_plane.server, token=beta_plane.token, ca_file=str(beta_plane.ca_file)
    )
    name = f"beta-{version}"
    objects.create_node(client, name)
    api = rest.Rest(config.new_client_from_config(str(beta_plane.kubeconfig)))
    found = capabilities.detect(api, driver=objects.DRIVER, node_name=name)
    assert found.api_version == "v1beta2"
    assert found.mode is settings.Mode.FULL
    uid = client.get(f"/api/v1/nodes/{name}")["metadata"]["uid"]
    owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid, "controller": True}
    target = slicediff.Target(driver=objects.DRIVER, node_name=name, pool=name, owner=owner)
    sync = slicesync.SliceSync(api, target, api_version=version)
    desired = _desired(name, "2xA100-40GB")
    assert sync.publish(desired).writes == 3
    assert sync.dropped_fields == set()
    assert sync.publish(desired).writes == 0
    sent = splitting.specs(desired, driver=objects.DRIVER, node_name=name, pool=name, generation=1)
    assert [s["spec"] for s in _stored(sync)] == sent
    # Read back in the other beta version too: the server stores one object, whatever we speak.
    other = "v1beta1" if version == "v1beta2" else "v1beta2"
    assert (
        len(
            client.items(
                f"/apis/resource.k8s.io/{other}/resourceslices?fieldSelector=spec.nodeName={name}"
            )
        )
        == 3
    )
