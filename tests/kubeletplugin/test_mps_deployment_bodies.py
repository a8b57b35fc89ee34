"""The Deployment an MPS daemon runs in (`mpsdeployments.DeploymentRunner.deployment`), no server.

Covers: one replica, recreated rather than surged, pinned to the node, tolerating every taint;
the daemon's directory mounted at the same path and its ``shm`` as the pod's ``/dev/shm`` (its
clients' ``/dev/shm``); with real GPUs the driver root mounted read-only and the control command
run with the driver's libraries and tools; the image pulled with the given secrets and policy;
names stable per node and daemon and valid; an empty image refused with the flag's name.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from controller import rest
from kubeletplugin import mpsdeployments

ENV = {
    "CUDA_MPS_PIPE_DIRECTORY": "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-0/pipe",
    "CUDA_MPS_LOG_DIRECTORY": "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-0/log",
    "CUDA_VISIBLE_DEVICES": "GPU-abc",
}
BASE = "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-0"


def _runner(node: str = "node-a", **kwargs: Any) -> mpsdeployments.DeploymentRunner:
    return mpsdeployments.DeploymentRunner(
        rest.Rest(client.ApiClient()),
        namespace="gpu-dra-driver",
        node_name=node,
        image=kwargs.pop("image", "gpu-dra-driver:1.0"),
        driver="gpu.dra.dev",
        **kwargs,
    )


def _pod(body: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = body["spec"]["template"]["spec"]
    return pod


def test_a_fake_gpu_daemon_runs_the_control_command_in_front() -> None:
    body = _runner().deployment("gpu-0", ("mps-control",), ENV)
    assert body["spec"]["replicas"] == 1
    assert body["spec"]["strategy"] == {"type": "Recreate"}
    pod = _pod(body)
    assert pod["nodeName"] == "node-a"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    (container,) = pod["containers"]
    assert container["command"] == ["mps-control", "-f"]
    assert container["image"] == "gpu-dra-driver:1.0"
    assert container["volumeMounts"] == [
        {"name": "daemon", "mountPath": BASE},
        {"name": "daemon", "mountPath": "/dev/shm", "subPath": "shm"},
    ]
    assert pod["volumes"] == [{"name": "daemon", "hostPath": {"path": BASE, "type": "Directory"}}]


def test_a_real_gpu_daemon_runs_the_drivers_control_command() -> None:
    body = _runner(driver_root="/run/nvidia/driver").deployment(
        "gpu-0", ("nvidia-cuda-mps-control",), ENV
    )
    pod = _pod(body)
    (container,) = pod["containers"]
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert "libcuda.so.1" in container["command"][2]
    assert container["command"][3:] == ["nvidia-cuda-mps-control", "-f"]
    assert {
        "name": "driver-root",
        "mountPath": "/driver-root",
        "readOnly": True,
        "mountPropagation": "HostToContainer",
    } in container["volumeMounts"]
    assert {
        "name": "driver-root",
        "hostPath": {"path": "/run/nvidia/driver", "type": "Directory"},
    } in pod["volumes"]


def test_the_image_is_pulled_as_the_plugins_is() -> None:
    """A private registry: the daemon pod gets the chart's pull secrets and pull policy."""
    plain = _pod(_runner().deployment("gpu-0", ("c",), ENV))
    assert "imagePullSecrets" not in plain
    assert plain["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    private = _runner(pull_policy="Always", pull_secrets=("regcred", "mirror-creds"))
    pod = _pod(private.deployment("gpu-0", ("c",), ENV))
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-creds"}]
    assert pod["containers"][0]["imagePullPolicy"] == "Always"


def test_names_are_stable_per_node_and_daemon_and_valid() -> None:
    long_id = "claim-0123abcd-gpu-0-mig-1g5gb-3-and-then-some-more"
    first, again, other = _runner(), _runner(), _runner(node="node-b")
    assert first.name("gpu-0") == again.name("gpu-0")
    assert first.name("gpu-0") != other.name("gpu-0")
    name = first.name(long_id)
    assert len(name) <= 63
    assert name == name.lower()
    body = first.deployment(long_id, ("c",), ENV)
    assert body["metadata"]["labels"][mpsdeployments.LABEL] == name


def test_an_empty_image_is_refused_with_the_flag() -> None:
    with pytest.raises(ValueError, match="--mps-image"):
        _runner(image="")
