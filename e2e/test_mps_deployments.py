"""MPS daemons as Deployments pinned to the node, against the real API server.

Covers: starting a daemon creates a one-replica Deployment bound to the node, running the control
daemon in the foreground, privileged, with its directory mounted from the host at the same path
(and its ``shm`` as the pod's ``/dev/shm``); the kube-controller-manager makes its pod; the
plugin finds the daemon through the pipe directory, sets and verifies its settings; starting it
again adopts the Deployment; stopping it quits the daemon and deletes the Deployment.

And the plugin process with ``--mps-runner kubernetes`` on a node of the local control plane: a
share prepared on an MPS GPU gets its daemon pod; a rolling update (the new plugin started beside
the old one, then the old one stopped with SIGTERM) and then a plain restart (stopped, started)
leave the daemon's Deployment and pod untouched (same UIDs, creation times, generation, no
restart) and its process running; the new plugin adopts the daemon (a second share joins it) and
deletes a daemon Deployment no claim holds; the last share released after the restarts stops the
daemon and deletes its Deployment and pod.

No kubelet runs containers here, so `DaemonPods` plays the container runtime for the daemon pods:
it runs each pod's command with the pod's environment, once per pod, as the container would.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import config

from controller import rest
from dra_driver.backends.fake import mpscontrol
from dra_driver.isolation import mps
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, nodeagents, objects, processes
from kubeletplugin import mpsdeployments
from tests.dra_driver.isolation import daemonroots

pytestmark = pytest.mark.e2e

CONTROL = (sys.executable, "-m", "dra_driver.backends.fake.mpscontrol")
REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class DaemonPods:
    """Runs the container of every MPS daemon pod in `namespace`, once per pod UID."""

    client: kube.Kube
    namespace: str
    started: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def pods(self) -> list[kube.Obj]:
        selector = f"app.kubernetes.io/name={mpsdeployments.APP}"
        return self.client.items(
            f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={selector}"
        )

    def run(self) -> None:
        while not self._stop.wait(0.1):
            for pod in self.pods():
                uid = pod["metadata"]["uid"]
                if uid not in self.started and not pod["metadata"].get("deletionTimestamp"):
                    (container,) = pod["spec"]["containers"]
                    env = {item["name"]: item["value"] for item in container["env"]}
                    self.started[uid] = subprocess.Popen(
                        container["command"],
                        env={**os.environ, **env},
                        cwd=REPO,
                        start_new_session=True,
                    )

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="daemon-pods")
        thread.start()
        return thread

    def stop(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(timeout=10)
        for process in self.started.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def daemon_pods(scenario: Scenario) -> Iterator[DaemonPods]:
    pods = DaemonPods(scenario.client, scenario.namespace)
    thread = pods.start()
    try:
        yield pods
    finally:
        pods.stop(thread)


@pytest.fixture
def root() -> Iterator[pathlib.Path]:
    """Short, in /tmp (pipe directories are named after it); gone with its daemons after."""
    with daemonroots.short_root() as path:
        yield path


def test_a_daemon_runs_as_a_pinned_deployment(
    scenario: Scenario, daemon_pods: DaemonPods, root: pathlib.Path
) -> None:
    api = rest.Rest(config.new_client_from_config(str(scenario.plane.kubeconfig)))
    runner = mpsdeployments.DeploymentRunner(
        api,
        namespace=scenario.namespace,
        node_name="node-x",
        image="gpu-dra:test",
        driver="gpu.dra.dev",
    )
    daemons = mps.Daemons(root, control=CONTROL, runner=runner, ready_timeout=30)
    spec = mps.DaemonSpec(id="gpu-0", devices=("GPU-abc",), active_thread_percentage=30)
    path = f"/apis/apps/v1/namespaces/{scenario.namespace}/deployments/{runner.name('gpu-0')}"
    pipe = daemons.ensure(spec)
    deployment = scenario.client.get(path)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeName"] == "node-x"
    container = pod["containers"][0]
    assert container["command"] == [*CONTROL, "-f"]
    assert container["securityContext"] == {"privileged": True}
    assert pod["volumes"][0]["hostPath"]["path"] == str(root / "gpu-0")
    assert container["volumeMounts"] == [
        {"name": "daemon", "mountPath": str(root / "gpu-0")},
        {"name": "daemon", "mountPath": "/dev/shm", "subPath": "shm"},
    ]
    assert {"name": "CUDA_VISIBLE_DEVICES", "value": "GPU-abc"} in container["env"]
    assert pipe == root / "gpu-0" / "pipe"
    log = (root / "gpu-0" / "log" / "control.log").read_text()
    assert "set_default_active_thread_percentage 30" in log
    assert runner.kept() == {"gpu-0"}
    version = deployment["metadata"]["resourceVersion"]
    daemons.ensure(spec)  # running: adopted, not created again
    assert scenario.client.get(path)["metadata"]["resourceVersion"] == version
    daemons.stop("gpu-0")
    kube.wait_for(lambda: not scenario.client.exists(path), what="Deployment deleted")
    (process,) = daemon_pods.started.values()
    assert process.wait(10) == 0
    assert runner.kept() == set()
    assert mpscontrol.running_daemons().isdisjoint([process.pid])
    daemons.close()


# -- the plugin restarted under a running daemon ------------------------------------------------


def _share(name: str) -> list[dict[str, Any]]:
    return [objects.request(name, "shared.gpu.dra.dev", capacity={"memory": "4Gi"})]


@dataclasses.dataclass(frozen=True)
class DaemonIdentity:
    """What would change if the daemon's Deployment or pod were replaced or restarted."""

    deployment_uid: str
    generation: int
    pod_uid: str
    pod_created: str
    restarts: int
    pid: int


def _identity(scenario: Scenario, pods: DaemonPods, name: str) -> DaemonIdentity:
    ns = scenario.namespace
    deployment = scenario.client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    selector = f"{mpsdeployments.LABEL}={name}"
    (pod,) = scenario.client.items(f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}")
    statuses = pod.get("status", {}).get("containerStatuses", [])
    process = pods.started[pod["metadata"]["uid"]]
    assert process.poll() is None, "the daemon process exited"
    return DaemonIdentity(
        deployment_uid=deployment["metadata"]["uid"],
        generation=deployment["metadata"]["generation"],
        pod_uid=pod["metadata"]["uid"],
        pod_created=pod["metadata"]["creationTimestamp"],
        restarts=sum(s.get("restartCount", 0) for s in statuses),
        pid=process.pid,
    )


def _deployments(scenario: Scenario) -> set[str]:
    path = f"/apis/apps/v1/namespaces/{scenario.namespace}/deployments"
    return {d["metadata"]["name"] for d in scenario.client.items(path)}


def _logged(plugin: processes.Process, event: str, daemon: str) -> bool:
    lines = plugin.log_path.read_text(errors="replace").splitlines()
    return any(event in line and f"daemon={daemon}" in line for line in lines)


def _handed_over(node: nodeagents.PluginNode, old: processes.Process, pod_uid: str) -> None:
    """A rolling update: the new plugin starts beside the old, then the old gets SIGTERM."""
    node.start_plugin(pod_uid=pod_uid)
    old.stop()
    assert old.exit_code() == 0, old.log_tail()


def test_the_daemon_outlives_plugin_restarts_and_goes_with_its_last_claim(
    scenario: Scenario, plugin_nodes: NodeFactory, daemon_pods: DaemonPods
) -> None:
    client, ns = scenario.client, scenario.namespace
    node = plugin_nodes(
        "1xA100-40GB",
        extra_args=("--mps-runner=kubernetes", "--mps-image=gpu-dra:test", f"--namespace={ns}"),
    )
    api = rest.Rest(config.new_client_from_config(str(scenario.plane.kubeconfig)))
    runner = mpsdeployments.DeploymentRunner(
        api, namespace=ns, node_name=node.name, image="gpu-dra:test", driver=objects.DRIVER
    )
    daemon = runner.name("gpu-0")
    scenario.schedule(node.name, "first", _share("share"))
    kube.wait_for(functools.partial(node.prepared_record, ns, "first"), what="first prepared")
    assert _deployments(scenario) == {daemon}
    kube.wait_for(lambda: daemon_pods.started, what="the daemon pod runs")
    before = _identity(scenario, daemon_pods, daemon)
    # A daemon no claim holds (a claim released while no plugin ran): the next start deletes it.
    orphan_dir = node.plugin_dir / "mps" / "claim-gone"
    orphan = runner.deployment(
        "claim-gone",
        CONTROL,
        {
            "CUDA_MPS_PIPE_DIRECTORY": str(orphan_dir / "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(orphan_dir / "log"),
        },
    )
    orphan_dir.mkdir()
    client.create(f"/apis/apps/v1/namespaces/{ns}/deployments", orphan)
    kube.wait_for(lambda: len(daemon_pods.started) == 2, what="the orphan's pod runs")

    plugins = [p for p in node.children if p.name.startswith("plugin-")]
    _handed_over(node, plugins[-1], "plugin-pod-2")
    kube.wait_for(
        lambda: orphan["metadata"]["name"] not in _deployments(scenario),
        what="the orphan Deployment deleted",
    )
    assert _deployments(scenario) == {daemon}
    assert _identity(scenario, daemon_pods, daemon) == before
    restarted = [p for p in node.children if p.name.startswith("plugin-")][-1]
    restarted.stop()  # SIGTERM, then a new plugin: a restart without overlap
    assert restarted.exit_code() == 0, restarted.log_tail()
    node.start_plugin(pod_uid="plugin-pod-3")
    assert _identity(scenario, daemon_pods, daemon) == before
    new = [p for p in node.children if p.name.startswith("plugin-")][-1]
    assert _logged(new, "mps.adopted", "gpu-0")
    assert _logged(restarted, "mps.orphan_stopping", "claim-gone")
    assert not orphan_dir.exists()

    scenario.schedule(node.name, "second", _share("share"))  # joins the adopted daemon
    kube.wait_for(functools.partial(node.prepared_record, ns, "second"), what="second prepared")
    assert _identity(scenario, daemon_pods, daemon) == before
    assert len(daemon_pods.started) == 2, "no daemon pod started again"

    client.delete(f"/api/v1/namespaces/{ns}/pods/first")
    kube.wait_for(lambda: node.record(ns, "first") is None, what="first unprepared")
    assert _identity(scenario, daemon_pods, daemon) == before, "the second share still uses it"
    client.delete(f"/api/v1/namespaces/{ns}/pods/second")
    kube.wait_for(lambda: not _deployments(scenario), what="the daemon's Deployment deleted")
    kube.wait_for(lambda: not daemon_pods.pods(), what="the daemon's pod deleted")
    process = daemon_pods.started[before.pod_uid]
    assert process.wait(10) == 0, "the daemon quit"
    assert not (node.plugin_dir / "mps" / "gpu-0").exists()
