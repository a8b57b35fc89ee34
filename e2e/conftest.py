"""Fixtures of the end-to-end scenarios: a real control plane per session, a namespace per test.

``GPU_DRA_E2E_KUBECONFIG`` points the same scenarios at another cluster (kind, see
``e2e/kind/run.sh``); those that need the local binaries skip there (`clusters`).

The control plane starts once per session (about 10 s after the one-time build); each scenario
gets its own namespace and fake nodes, removed afterwards. When a scenario fails, the report gets
the tail of every component's log and the objects involved (diagnostics), and the work dir with
the full logs is kept by pytest's temporary directory retention.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import pathlib
import shutil
import signal
import tempfile
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from dra_driver.backends.fake import mpscontrol
from e2e.harness import binaries, clusters, containerd, controlplane, kube, nodeagents, objects

_counter = itertools.count()


Cluster = controlplane.ControlPlane | clusters.ExternalCluster


def local(plane: Cluster) -> controlplane.ControlPlane:
    """The local control plane, for scenarios that need its binaries; skips on another cluster."""
    if not isinstance(plane, controlplane.ControlPlane):
        pytest.skip(f"needs the local control plane ({clusters.ENV} names another cluster)")
    return plane


@pytest.fixture(scope="session")
def bin_dir() -> pathlib.Path:
    if clusters.external_kubeconfig() is not None:
        pytest.skip(f"needs the local control plane ({clusters.ENV} names another cluster)")
    return binaries.ensure_built()


def _plane(
    bin_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory, name: str, gates: str
) -> Iterator[controlplane.ControlPlane]:
    plane = controlplane.ControlPlane(
        bin_dir=bin_dir, work_dir=tmp_path_factory.mktemp(name), feature_gates=gates
    )
    with plane:
        yield plane
    assert plane.running() == [], f"control plane processes left running: {plane.running()}"


@pytest.fixture(scope="session")
def control_plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The local control plane, or the cluster ``GPU_DRA_E2E_KUBECONFIG`` names (kind)."""
    external = clusters.external_kubeconfig()
    if external is not None:
        yield clusters.ExternalCluster(external, work_dir=tmp_path_factory.mktemp("external"))
        return
    yield from _plane(request.getfixturevalue("bin_dir"), tmp_path_factory, "cluster", "")


@pytest.fixture(scope="session")
def compat_control_plane(
    bin_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[controlplane.ControlPlane]:
    """A cluster without partitionable devices and consumable capacity (an older cluster)."""
    gates = "DRAPartitionableDevices=false,DRAConsumableCapacity=false"
    yield from _plane(bin_dir, tmp_path_factory, "compat-cluster", gates)


@dataclasses.dataclass
class Scenario:
    """One test's corner of a cluster: a namespace and the fake nodes it created."""

    plane: Cluster
    client: kube.Kube
    namespace: str
    nodes: list[str] = dataclasses.field(default_factory=list)

    def schedule(self, node: str, name: str, requests: list[dict[str, Any]]) -> None:
        """Claim `name` with `requests`, and pod `name` on `node` using it."""
        objects.create_claimed_pod(self.client, self.namespace, name, node=node, requests=requests)

    def allocated(self, name: str) -> list[kube.Obj]:
        """Wait until pod `name` is bound; the allocation results of claim `name`."""
        return objects.wait_allocated(self.client, self.namespace, name)

    def device(self, name: str) -> str:
        """Wait until pod `name` is bound; the one device claim `name` got."""
        (result,) = self.allocated(name)
        device: str = result["device"]
        return device

    def waits(self, name: str) -> str:
        """Wait until pod `name` is unschedulable with nothing allocated; the scheduler's reason."""
        return objects.wait_pending(self.client, self.namespace, name)

    def node(self, gpus: str, **kwargs: object) -> str:
        name = f"{self.namespace}-node-{len(self.nodes)}"
        self.nodes.append(name)
        objects.publish_fake_node(self.client, name, gpus=gpus, **kwargs)  # type: ignore[arg-type]
        return name


def _scenario(plane: Cluster, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    client = plane.client()
    objects.apply_device_classes(client)
    namespace = f"e2e-{next(_counter)}"
    objects.create_namespace(client, namespace)
    scenario = Scenario(plane=plane, client=client, namespace=namespace)
    yield scenario
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        _attach_diagnostics(request.node, scenario)
    for node in scenario.nodes:
        objects.delete_node(client, node)
    client.delete(f"/api/v1/namespaces/{namespace}")


@pytest.fixture
def scenario(control_plane: Cluster, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    yield from _scenario(control_plane, request)


@pytest.fixture
def compat_scenario(
    compat_control_plane: controlplane.ControlPlane, request: pytest.FixtureRequest
) -> Iterator[Scenario]:
    yield from _scenario(compat_control_plane, request)


NodeFactory = Callable[..., nodeagents.PluginNode]


@pytest.fixture
def plugin_nodes(
    scenario: Scenario, bin_dir: pathlib.Path, request: pytest.FixtureRequest
) -> Iterator[NodeFactory]:
    """Start fake nodes with our plugin: ``plugin_nodes(gpus, extra_args=..., runtime=...)``, each
    in a work dir of its own (short, like /var/lib/kubelet: unix socket paths have a 108-byte
    limit); `runtime` takes the work dir and the node's CDI dir and returns a `Containerd`. After
    the test the nodes stop and their dirs go; a failed test gets their logs."""
    started: list[tuple[nodeagents.PluginNode, pathlib.Path]] = []

    def start(
        gpus: str,
        *,
        extra_args: tuple[str, ...] = (),
        runtime: Callable[[pathlib.Path, pathlib.Path], containerd.Containerd] | None = None,
    ) -> nodeagents.PluginNode:
        work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-", dir="/tmp"))
        node = nodeagents.PluginNode(
            plane=local(scenario.plane),
            client=scenario.client,
            bin_dir=bin_dir,
            work_dir=work_dir,
            name=f"{scenario.namespace}-node-{len(scenario.nodes)}",
            gpus=gpus,
            extra_args=extra_args,
        )
        started.append((node, work_dir))
        scenario.nodes.append(node.name)
        if runtime is not None:
            node.runtime = runtime(work_dir, node.cdi_dir)
        node.start()
        return node

    try:
        yield start
    finally:
        report = getattr(request.node, "rep_call", None)
        for node, work_dir in reversed(started):
            if report is not None and report.failed:
                request.node.add_report_section("teardown", f"{node.name}", node.log_tails())
            node.stop()
            shutil.rmtree(work_dir, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _attach_diagnostics(item: pytest.Item, scenario: Scenario) -> None:
    sections = [f"work dir with full logs: {scenario.plane.work_dir}"]
    for process in scenario.plane.processes:
        sections.append(f"--- {process.name} (last lines) ---\n{process.log_tail(25)}")
    ns = scenario.namespace
    for kind, path in (
        ("pods", f"/api/v1/namespaces/{ns}/pods"),
        ("claims", f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims"),
    ):
        for obj in scenario.client.items(path):
            brief = {
                "name": obj["metadata"]["name"],
                "spec": obj.get("spec"),
                "status": obj.get("status"),
            }
            sections.append(f"--- {kind[:-1]} ---\n{json.dumps(brief, indent=1)[:3000]}")
    item.add_report_section("teardown", "diagnostics", "\n".join(sections))


@pytest.fixture(autouse=True)
def _no_leaked_mps_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake MPS daemons a test started in its temporary directories are stopped after it (they
    outlive their starter; those in directories a test removes exit by themselves). Daemons of
    other test runs on the machine are left alone."""
    base = tmp_path_factory.getbasetemp()
    before = mpscontrol.running_daemons(base)
    yield
    for pid in mpscontrol.running_daemons(base) - before:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
