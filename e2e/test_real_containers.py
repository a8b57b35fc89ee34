"""Real containers: the fake kubelet starts prepared pods through containerd (CRI, CDI on) and runc.

Covers: a pod with a whole fake GPU runs a container from the test image (no registry) that gets
every CDI environment variable our plugin wrote for its claim (``GPU_DRA_GPU_0_UUID`` …) and
reports it on stdout, which lands in the pod's record; deleting the pod stops the container and
sandbox before the claim is unprepared (the kubelet's order) and leaves no shim, container
process, mount or pod cgroup behind; a container that exits has its exit code recorded, and a
force-deleted pod is torn down as well; stopping the node leaves nothing of containerd either.
A test run ended by SIGTERM or SIGINT stops its containerd itself; one killed outright (SIGKILL)
has its containers, mounts and cgroups removed by the reaper.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

from e2e import probe
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import containerd, kube, nodeagents, objects, reaping, workloads

pytestmark = pytest.mark.e2e

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def runtime_node(plugin_nodes: NodeFactory) -> nodeagents.PluginNode:
    runtime = functools.partial(containerd.for_node, probe=probe.build())
    return plugin_nodes("2xA100-40GB", runtime=runtime)


def test_a_container_gets_its_gpu_through_cdi_and_deleting_the_pod_leaves_nothing(
    scenario: Scenario, runtime_node: nodeagents.PluginNode
) -> None:
    client, ns, node = scenario.client, scenario.namespace, runtime_node
    runtime = node.runtime
    assert runtime is not None
    objects.create_claim(client, ns, "gpu", [objects.request("gpu", "gpu.dra.dev")])
    workloads.create_probe_pod(
        client,
        ns,
        "probe",
        node=node.name,
        image=runtime.image.ref,
        claims=["gpu"],
        args=["--hold"],
    )

    seen = workloads.wait_seen(node, ns, "probe")
    container = workloads.container_record(node, ns, "probe")
    env: dict[str, str] = seen["env"]  # the probe reports GPU_DRA_*, CUDA_*, NVIDIA_*, ...
    cdi_env = dict(item.split("=", 1) for item in container["env"])
    gpu_env = {k: v for k, v in cdi_env.items() if k.startswith("GPU_DRA_")}
    assert gpu_env, "the claim's CDI spec has the device's variables"
    assert {k: env.get(k) for k in gpu_env} == gpu_env  # every one of them, in the container
    device = objects.allocation(client, ns, "gpu")[0]["device"]
    prefix = f"GPU_DRA_{device.upper().replace('-', '_')}_"
    assert env[f"{prefix}UUID"].startswith("GPU-")
    # The device nodes the container has are those the spec gave it (none without a driver root).
    assert sorted(d["path"] for d in seen["devices"]) == sorted(
        n["path"] for n in container["deviceNodes"]
    )
    assert container["state"] == "running"
    assert container["containerID"]
    assert runtime.leftovers(daemon=False), "a running pod has a shim and mounts"

    workloads.delete_gracefully(client, ns, "probe")
    assert containerd.wait_pods_gone(runtime) == []
    assert node.record(ns, "probe") is None
    log = (node.work_dir / "logs" / f"{node.children[0].name}.log").read_text()
    assert log.index('"Stopped pod"') < log.index('"Unprepared pod"')  # the kubelet's order

    # A container that exits: its exit code is recorded; a force-deleted pod is torn down too.
    objects.create_claim(client, ns, "gpu-2", [objects.request("gpu", "gpu.dra.dev")])
    workloads.create_probe_pod(
        client, ns, "once", node=node.name, image=runtime.image.ref, claims=["gpu-2"]
    )
    exited = kube.wait_for(
        lambda: workloads.container_record(node, ns, "once").get("exitCode") is not None,
        what="the probe exited",
    )
    assert exited
    container = workloads.container_record(node, ns, "once")
    assert (container["state"], container["exitCode"]) == ("exited", 0)
    assert container["seen"]["env"][f"{prefix}UUID"].startswith("GPU-")
    objects.delete_pod(client, ns, "once")
    assert containerd.wait_pods_gone(runtime) == []

    node.stop()
    assert runtime.leftovers() == []


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGKILL, id="SIGKILL-the-reaper-cleans"),
        pytest.param(signal.SIGTERM, id="SIGTERM-the-owner-stops-it"),
        pytest.param(signal.SIGINT, id="SIGINT-the-owner-stops-it"),
    ],
)
def test_a_test_run_ended_by_a_signal_leaves_nothing_behind(
    tmp_path: pathlib.Path, signum: signal.Signals
) -> None:
    """A process owning a containerd with a running container gets a signal: on SIGTERM and
    SIGINT its own clean-up runs (KeyboardInterrupt through the ``with``), on SIGKILL the reaper
    it started removes containerd, shim, container, mounts and cgroups."""
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-", dir="/tmp"))
    owner_file = tmp_path / "owner"
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from e2e.harness import containerd
        work = pathlib.Path({str(work_dir)!r})
        (work / "cdi").mkdir()
        with containerd.for_node(work, work / "cdi") as runtime:
            runtime.run("sleeper", "/bin/sleep", "3600")
            pathlib.Path({str(owner_file)!r}).write_text(
                f"{{runtime.directory}}\\n{{runtime.socket}}\\n{{runtime.cgroup_name}}")
            time.sleep(3600)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, start_new_session=True, env=dict(os.environ)
    )
    try:
        kube.wait_for(owner_file.exists, what="containerd with a container up", timeout=120)
        directory, socket, cgroup = owner_file.read_text().splitlines()
        owner = reaping.Owner(pathlib.Path(directory), pathlib.Path(socket), cgroup)
        running = reaping.leftovers(owner)
        assert any(reaping.SHIM in line for line in running)
        assert any(line.startswith("cgroup ") for line in running)
        os.kill(child.pid, signum)
        child.wait(timeout=60)
        if signum != signal.SIGKILL:
            # Stopped by its own clean-up (KeyboardInterrupt), which is complete when it exits.
            assert child.returncode == -signal.SIGINT
            assert reaping.leftovers(owner) == []
        kube.wait_for(lambda: reaping.leftovers(owner) == [], what="all cleaned up", timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        shutil.rmtree(work_dir, ignore_errors=True)
