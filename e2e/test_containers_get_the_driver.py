"""What a claimed GPU looks like from inside a real container: the whole CDI spec, applied by
containerd and runc, with the driver's files from a (synthetic) driver root.

A node with four fake A100s whose driver root is `tests.driverroot.synthetic` (the project's fake
libcuda and NVML installed as the driver's 580.95.05 libraries, real device nodes, a proc tree),
containerd with CDI on, and the plugin installing the real ``nvidia-cdi-hook``. Each pod runs the
probe (`e2e/probe`) from the test image; its report is what the container saw. Covers, for a whole
GPU, a MIG slice, a share (MPS strategy: an MPS client of the GPU's daemon) and a whole GPU with an
MPS config (a client of the claim's own daemon):

- the device nodes the spec names exist with their numbers (``/dev/nvidia<minor>``, the control
  nodes, a MIG device's GPU-instance and compute-instance capability nodes);
- ``ldconfig -p`` lists ``libcuda.so.1`` in the driver's library folder (the ``update-ldcache``
  hook ran in the container), and CUDA loads it from there without ``LD_LIBRARY_PATH``;
- the environment is the spec's (``NVIDIA_VISIBLE_DEVICES=void``, ``GPU_DRA_*``,
  ``CUDA_MPS_PIPE_DIRECTORY``), the driver's files are mounted read-only, the MPS pipe read-write;
- the share's ``/etc/ld.so.preload`` loads the quota library, which takes every allocation: two
  containers of the share's pod allocate against one account and together get exactly the share;
- deleting the pods stops their containers and leaves nothing of them behind.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import pytest

from dra_driver.backends.fake import specs
from dra_driver.isolation import quotadefaults
from e2e import probe
from e2e.conftest import NodeFactory, Scenario
from e2e.harness import containerd, images, kube, nodeagents, objects, scraping, workloads
from tests.driverroot import nvidiactk, synthetic
from tests.preload import building

pytestmark = pytest.mark.e2e

GIB = 1024**3
LIBS = "/usr/lib/x86_64-linux-gnu"
GPU_INDEX = {"gpu": 0, "mig": 1, "share": 2, "mps": 3}
MPS_CONFIG = {
    "apiVersion": "gpu.dra.dev/v1alpha1",
    "kind": "GpuConfig",
    "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}},
}


METRICS_PORT = scraping.free_port()


@pytest.fixture
def node(plugin_nodes: NodeFactory, tmp_path: pathlib.Path) -> nodeagents.PluginNode:
    plain = building.build(building.Flavour.PLAIN)
    root = synthetic.create(
        tmp_path / "driver-base",
        fakes=plain.fakes,
        gpu_minors=(0, 1, 2, 3),
        mig=[synthetic.MigInstance(gpu=1, gi=gi, ci=0) for gi in range(1, 8)],
    )
    return plugin_nodes(
        "4xA100-40GB",
        extra_args=(
            *nvidiactk.plugin_flags(root),
            f"--preload-library={plain.library}",
            f"--metrics-port={METRICS_PORT}",
        ),
        runtime=functools.partial(containerd.for_node, probe=probe.build()),
    )


def _on_gpu(index: int) -> list[str]:
    return [f'device.attributes["gpu.dra.dev"].index == {index}']


def _pod(
    client: kube.Kube,
    namespace: str,
    name: str,
    *,
    node: nodeagents.PluginNode,
    containers: dict[str, list[str]],
) -> None:
    """Pod `name` using claim `name`, a probe container per entry (name → probe arguments), the
    fake libcuda showing the claim's GPU (as the real driver would show only the claimed one)."""
    assert node.runtime is not None
    env = {
        "FAKE_GPU_UUIDS": specs.gpu_uuid(node.name, GPU_INDEX[name]),
        "FAKE_GPU_MEMORY": str(40 * GIB),
    }
    body = objects.pod_body(
        name,
        node=node.name,
        grace=5,
        containers=[
            objects.Container(
                name=container,
                claims=[name],
                image=node.runtime.image.ref,
                command=[images.PROBE_PATH],
                args=args,
                env=env,
            )
            for container, args in containers.items()
        ],
    )
    client.create(f"/api/v1/namespaces/{namespace}/pods", body)


def _devices(seen: dict[str, Any]) -> dict[str, tuple[str, int, int]]:
    return {d["path"]: (d["type"], d["major"], d["minor"]) for d in seen["devices"]}


def _mount(seen: dict[str, Any], path: str) -> dict[str, Any]:
    found = [m for m in seen["mounts"] if m["path"] == path]
    assert len(found) == 1, (path, found)
    (mount,) = found
    return dict(mount)


def _driver_is_there(seen: dict[str, Any], root_minor: int) -> None:
    devices = _devices(seen)
    assert devices[f"/dev/nvidia{root_minor}"] == ("c", synthetic.FRONTEND_MAJOR, root_minor)
    assert devices["/dev/nvidiactl"] == ("c", synthetic.FRONTEND_MAJOR, 255)
    assert devices["/dev/nvidia-uvm"] == ("c", synthetic.UVM_MAJOR, 0)
    libcuda = seen["ldcache"]["libraries"]["libcuda.so.1"]
    assert libcuda[0] == f"{LIBS}/libcuda.so.1", seen["ldcache"]
    assert seen["cuda"]["library"] == f"{LIBS}/libcuda.so.1"
    assert seen["cuda"]["error"] is None
    assert "LD_LIBRARY_PATH" not in seen["env"]
    assert seen["env"]["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert _mount(seen, f"{LIBS}/libcuda.so.{synthetic.DEFAULT_DRIVER_VERSION}")["ro"] is True
    assert _mount(seen, "/usr/bin/nvidia-smi")["ro"] is True


def test_four_kinds_of_devices_in_real_containers(
    scenario: Scenario, node: nodeagents.PluginNode
) -> None:
    client, ns = scenario.client, scenario.namespace
    claims = {
        "gpu": [objects.request("gpu", "gpu.dra.dev", selectors=_on_gpu(0))],
        "mig": [
            objects.request(
                "gpu",
                "mig.gpu.dra.dev",
                selectors=[
                    'device.attributes["gpu.dra.dev"].parentIndex == 1',
                    'device.attributes["gpu.dra.dev"].profile == "1g.5gb"',
                ],
            )
        ],
        "share": [
            objects.request(
                "gpu", "shared.gpu.dra.dev", selectors=_on_gpu(2), capacity={"memory": "4Gi"}
            )
        ],
        "mps": [objects.request("gpu", "gpu.dra.dev", selectors=_on_gpu(3))],
    }
    for name, requests in claims.items():
        config = []
        if name == "mps":
            opaque = {"driver": "gpu.dra.dev", "parameters": MPS_CONFIG}
            config = [{"requests": ["gpu"], "opaque": opaque}]
        objects.create_claim(client, ns, name, requests, config=config)
    hold = ["--alloc-step", "1Gi", "--alloc-max", "3Gi", "--hold"]
    _pod(client, ns, "gpu", node=node, containers={"main": ["--hold"]})
    _pod(client, ns, "mig", node=node, containers={"main": ["--hold"]})
    _pod(client, ns, "share", node=node, containers={"a": hold, "b": hold})
    _pod(client, ns, "mps", node=node, containers={"main": ["--hold"]})

    gpu = workloads.wait_seen(node, ns, "gpu", timeout=120)
    _driver_is_there(gpu, 0)
    uuid = specs.gpu_uuid(node.name, 0)
    assert gpu["env"]["GPU_DRA_GPU_0_UUID"] == uuid
    assert [d["uuid"] for d in gpu["cuda"]["devices"]] == [uuid]
    assert gpu["preload"]["file"] is None  # a whole GPU has no quota

    mig = workloads.wait_seen(node, ns, "mig", timeout=120)
    _driver_is_there(mig, 1)
    (mig_uuid,) = [
        value
        for key, value in mig["env"].items()
        if key.startswith("GPU_DRA_GPU_1_MIG_1G5GB_")
        and key.endswith("_UUID")
        and "PARENT" not in key
    ]
    assert mig_uuid.startswith("MIG-")
    caps = {p: n for p, n in _devices(mig).items() if p.startswith("/dev/nvidia-caps/")}
    assert len(caps) == 2, caps  # the instance's GPU-instance and compute-instance nodes
    instance = _instance_of(caps)
    assert caps == {
        f"/dev/nvidia-caps/nvidia-cap{instance.gi_minor}": ("c", synthetic.CAPS_MAJOR, instance.gi_minor),
        f"/dev/nvidia-caps/nvidia-cap{instance.ci_minor}": ("c", synthetic.CAPS_MAJOR, instance.ci_minor),
    }  # fmt: skip

    _share_holds_one_account(node, client, ns)

    mps = workloads.wait_seen(node, ns, "mps", timeout=120)
    _driver_is_there(mps, 3)
    assert mps["env"]["CUDA_MPS_PIPE_DIRECTORY"].startswith("/")
    assert _mount(mps, mps["env"]["CUDA_MPS_PIPE_DIRECTORY"])["ro"] is False
    assert mps["preload"]["file"] is None

    runtime = node.runtime
    assert runtime is not None
    for name in claims:
        workloads.delete_gracefully(client, ns, name)
    assert containerd.wait_pods_gone(runtime) == []
    for name in claims:
        kube.wait_for(
            functools.partial(_unprepared, node, name, client, ns), what=f"{name} unprepared"
        )


def _share_holds_one_account(node: nodeagents.PluginNode, client: kube.Kube, ns: str) -> None:
    """The share's two containers: the quota library in each, one 4 GiB account for both."""
    a = workloads.wait_seen(node, ns, "share", "a", timeout=120)
    b = workloads.wait_seen(node, ns, "share", "b", timeout=120)
    for seen in (a, b):
        _driver_is_there(seen, 2)
        assert seen["preload"]["mapped"] is True
        assert seen["preload"]["file"].strip().endswith("libgpuquota.so")
        assert seen["cuda"]["alloc_entry"].endswith("libgpuquota.so")
        assert seen["cuda"]["devices"][0]["total_memory"] == 4 * GIB
        pipe = seen["env"]["CUDA_MPS_PIPE_DIRECTORY"]
        assert _mount(seen, pipe)["ro"] is False
        claim_dir = f"/var/run/gpu-dra/claims/{_uid(client, ns, 'share')}"
        assert _mount(seen, claim_dir)["ro"] is True  # the config cannot be changed
        assert _mount(seen, f"{claim_dir}/state")["ro"] is False
    # One account: each process is charged its context's memory at its first allocation
    # (`quotadefaults`), then 1 GiB steps; together they fill the share to less than a step.
    reserve = quotadefaults.for_product("NVIDIA A100-SXM4-40GB").context_reserve_bytes
    charged = sum(
        s["alloc"]["allocated"] + (reserve if s["alloc"]["allocated"] else 0) for s in (a, b)
    )
    assert charged <= 4 * GIB
    assert 4 * GIB - charged < GIB + reserve
    errors = [seen["alloc"]["error"] for seen in (a, b) if seen["alloc"]["error"] is not None]
    assert errors, "six GiB asked for, four granted: someone was refused"
    assert {(e["call"], e["rc"]) for e in errors} == {("cuMemAlloc_v2", 2)}
    # The node's metrics tell the same from the claim's accounting, with the claim's name.
    labels = {"namespace": ns, "claim": "share", "gpu_uuid": specs.gpu_uuid(node.name, 2)}

    def metric(name: str) -> float | None:
        return scraping.value(METRICS_PORT, name, **labels)

    assert metric("gpu_dra_share_memory_limit_bytes") == 4 * GIB
    assert metric("gpu_dra_share_memory_used_bytes") == charged
    assert metric("gpu_dra_share_processes") == sum(1 for s in (a, b) if s["alloc"]["allocated"])
    assert metric("gpu_dra_share_refused_allocations_total") == len(errors)


def _instance_of(caps: dict[str, tuple[str, int, int]]) -> synthetic.MigInstance:
    minors = sorted(minor for _, _, minor in caps.values())
    for gi in range(1, 8):
        instance = synthetic.MigInstance(gpu=1, gi=gi, ci=0)
        if [instance.gi_minor, instance.ci_minor] == minors:
            return instance
    raise AssertionError(f"no GPU instance of GPU 1 has the capability minors {minors}")


def _uid(client: kube.Kube, ns: str, claim: str) -> str:
    path = f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims/{claim}"
    uid: str = client.get(path)["metadata"]["uid"]
    return uid


def _unprepared(node: nodeagents.PluginNode, name: str, client: kube.Kube, ns: str) -> bool:
    return not (node.cdi_dir / f"k8s.gpu.dra.dev-claim_{_uid(client, ns, name)}.json").exists()
