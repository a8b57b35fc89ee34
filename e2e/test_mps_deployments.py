"""MPS daemons as Deployments pinned to the node, against the real API server.

Covers: starting a daemon creates a one-replica Deployment bound to the node, running the control
daemon in the foreground, privileged, with its directory mounted from the host at the same path;
the plugin then finds the daemon through the pipe directory, sets and verifies its settings;
starting it again adopts the Deployment; stopping it quits the daemon and deletes the Deployment.
No kubelet runs pods here, so the test plays the kubelet: it runs the pod's command with the
pod's environment, as the container would.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import threading

import pytest
from kubernetes import config

from controller import rest
from dra_driver.backends.fake import mpscontrol
from dra_driver.isolation import mps
from e2e.conftest import Scenario
from e2e.harness import kube
from kubeletplugin import mpsdeployments

pytestmark = pytest.mark.e2e

CONTROL = (sys.executable, "-m", "dra_driver.backends.fake.mpscontrol")


def _play_kubelet(
    client: kube.Kube, path: str, stop: threading.Event, started: list[subprocess.Popen[bytes]]
) -> None:
    """Run the Deployment's container command once it exists (the fake daemon, foreground)."""
    deployment = kube.wait_for(
        lambda: client.get(path) if client.exists(path) else None, what="MPS Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    started.append(
        subprocess.Popen(
            container["command"], env={**os.environ, **env}, cwd=pathlib.Path(__file__).parents[1]
        )
    )
    stop.wait(60)


def test_a_daemon_runs_as_a_pinned_deployment(scenario: Scenario) -> None:
    api = rest.Rest(config.new_client_from_config(str(scenario.plane.kubeconfig)))
    runner = mpsdeployments.DeploymentRunner(
        api,
        namespace=scenario.namespace,
        node_name="node-x",
        image="gpu-dra:test",
        driver="gpu.dra.dev",
    )
    root = pathlib.Path(tempfile.mkdtemp(prefix="gdra-mps-", dir="/tmp"))
    daemons = mps.Daemons(root, control=CONTROL, runner=runner, ready_timeout=30)
    spec = mps.DaemonSpec(id="gpu-0", devices=("GPU-abc",), active_thread_percentage=30)
    path = f"/apis/apps/v1/namespaces/{scenario.namespace}/deployments/{runner.name('gpu-0')}"
    stop = threading.Event()
    started: list[subprocess.Popen[bytes]] = []
    kubelet = threading.Thread(target=_play_kubelet, args=(scenario.client, path, stop, started))
    kubelet.start()
    try:
        pipe = daemons.ensure(spec)
        deployment = scenario.client.get(path)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeName"] == "node-x"
        container = pod["containers"][0]
        assert container["command"] == [*CONTROL, "-f"]
        assert container["securityContext"] == {"privileged": True}
        assert pod["volumes"][0]["hostPath"]["path"] == str(root / "gpu-0")
        assert container["volumeMounts"][0]["mountPath"] == str(root / "gpu-0")
        assert {"name": "CUDA_VISIBLE_DEVICES", "value": "GPU-abc"} in container["env"]
        assert pipe == root / "gpu-0" / "pipe"
        log = (root / "gpu-0" / "log" / "control.log").read_text()
        assert "set_default_active_thread_percentage 30" in log
        version = deployment["metadata"]["resourceVersion"]
        daemons.ensure(spec)  # running: adopted, not created again
        assert scenario.client.get(path)["metadata"]["resourceVersion"] == version
        daemons.stop("gpu-0")
        kube.wait_for(lambda: not scenario.client.exists(path), what="Deployment deleted")
        assert started[0].wait(10) == 0
    finally:
        stop.set()
        kubelet.join(timeout=10)
        for process in started:
            process.kill()
            process.wait()
    assert mpscontrol.running_daemons().isdisjoint(p.pid for p in started)
