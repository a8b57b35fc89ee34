"""Conformance: the driver part of our CDI specs against ``nvidia-ctk cdi generate``, field by field.

Both run on one synthetic driver root (`synthetic`: a 580.95.05 driver with our fake libcuda and
NVML as the driver's, real device nodes, a proc tree), ``nvidia-ctk`` of the NVIDIA Container
Toolkit v1.20.2 in its nvml mode (`nvidiactk`, the same Go module and version as our
``nvidia-cdi-hook``), we with `dra_driver.driverroot` for the ``all`` capabilities (the toolkit
mounts every library of the driver version; our default, compute and utility, is a subset: the
last test). Compared: the environment, every mount, every hook with its arguments, the control
nodes and each GPU's node. A difference fails the test unless `DIFFERENCES` names and explains it.

MIG devices cannot be compared: the toolkit reads MIG capability minors from the host's
``/proc/driver/nvidia-caps/mig-minors`` (it has no proc root option) and so produces no MIG device
without a MIG GPU on the host. Our capability nodes are checked against the synthetic root's own
nodes instead (`test_mig_capability_nodes_match_the_nodes_of_the_root`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from dra_driver.cdi import spec
from dra_driver.driverroot import devicenodes, discovery, editing, roots
from tests.driverroot import nvidiactk, synthetic
from tests.preload import building

pytestmark = [
    pytest.mark.timeout(900),  # the first run builds the toolkit (~100 s cold)
    pytest.mark.skipif(os.geteuid() != 0, reason="mknod of device nodes needs root"),
]

HOOK = "/var/lib/kubelet/plugins/gpu.dra.dev/bin/nvidia-cdi-hook"

DIFFERENCES = {
    "device node numbers": (
        "nvidia-ctk writes each node's major, minor, file mode and permissions as it finds them at "
        "generation; we name the host path only, so the runtime reads the numbers when the "
        "container is created (nvidia-uvm's major is dynamic: a driver reload between prepare and "
        "a container restart keeps our spec right). MIG capability nodes are the exception: "
        "explicit numbers, as the host may not have made them yet"
    ),
    "update-application-profile hook": (
        "sets EGLVisibleDGPUDevices for EGL and Vulkan (graphics); not part of the compute and "
        "utility capabilities"
    ),
    "gbm link": (
        "the create-symlinks link gbm/nvidia-drm_gbm.so -> ../libnvidia-allocator.so.1 is for GBM "
        "(Wayland/graphics buffer management); graphics only"
    ),
    "apply-cuda-memory-limits hook": (
        "a per-device createRuntime hook that applies NVIDIA_GPU_MEMORY_REQUEST/LIMIT, if the "
        "container sets them, through the driver's cgroup memory limits; our shares are limited by "
        "the quota library (and a whole GPU or MIG device needs no limit), so we add none"
    ),
    "symlink order": (
        "the links are compared as a set: nvidia-cdi-hook creates each independently (ours are "
        "ordered by folder and name, the toolkit's by library)"
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> synthetic.SyntheticRoot:
    fakes = building.build(building.Flavour.PLAIN).fakes
    return synthetic.create(tmp_path_factory.mktemp("synthetic"), fakes=fakes, gpu_minors=(0, 1))


@pytest.fixture(scope="module")
def theirs(root: synthetic.SyntheticRoot) -> dict[str, Any]:
    return nvidiactk.generate(root, hook_path=HOOK)


def _ours(root: synthetic.SyntheticRoot, capabilities: tuple[str, ...]) -> spec.ContainerEdits:
    driver, dev = roots.Root.at(str(root.driver_root)), roots.Root.at(str(root.dev_root))
    files = discovery.discover(driver, root.proc_root, capabilities=capabilities)
    nodes = spec.ContainerEdits(device_nodes=devicenodes.control_nodes(dev))
    return editing.driver_edits(files, driver, hook_path=HOOK) + nodes


@pytest.fixture(scope="module")
def ours(root: synthetic.SyntheticRoot) -> dict[str, Any]:
    device = spec.Device("u-x", spec.ContainerEdits(env=("X=1",)))
    rendered = spec.render("u", [device], _ours(root, ("all",)))
    return dict(rendered["containerEdits"])


def _hooks(edits: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {hook["args"][1]: hook for hook in edits["hooks"]}


def _links(hook: dict[str, Any]) -> set[str]:
    args = hook["args"][2:]
    assert args[::2] == ["--link"] * (len(args) // 2)
    return set(args[1::2])


def test_the_environment_is_the_same(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert sorted(ours["env"]) == sorted(theirs["containerEdits"]["env"])


def test_every_mount_is_the_same(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["mounts"] == theirs["containerEdits"]["mounts"]


def test_the_hooks_are_the_same_but_for_the_named_differences(
    theirs: dict[str, Any], ours: dict[str, Any]
) -> None:
    their_hooks, our_hooks = _hooks(theirs["containerEdits"]), _hooks(ours)
    assert DIFFERENCES["update-application-profile hook"]
    del their_hooks["update-application-profile"]
    assert list(our_hooks) == list(their_hooks)
    for name, hook in our_hooks.items():
        if name == "create-symlinks":
            continue
        assert hook == their_hooks[name], name
    # The toolkit emits the gbm link in a create-symlinks hook of its own (its graphics mounts).
    symlinks = [h for h in theirs["containerEdits"]["hooks"] if h["args"][1] == "create-symlinks"]
    their_links = set().union(*(_links(hook) for hook in symlinks))
    assert DIFFERENCES["gbm link"]
    assert DIFFERENCES["symlink order"]
    gbm = {link for link in their_links if "/gbm/" in link}
    assert gbm == {"../libnvidia-allocator.so.1::/usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so"}
    assert _links(our_hooks["create-symlinks"]) == their_links - gbm
    assert {k: v for k, v in our_hooks["create-symlinks"].items() if k != "args"} == {
        k: v for k, v in symlinks[0].items() if k != "args"
    }


def test_control_nodes_are_the_same_nodes(theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    assert DIFFERENCES["device node numbers"]
    assert _paths(ours["deviceNodes"]) == _paths(theirs["containerEdits"]["deviceNodes"])
    assert [n["path"] for n in ours["deviceNodes"]] == [
        n["path"] for n in theirs["containerEdits"]["deviceNodes"]
    ]
    for node in theirs["containerEdits"]["deviceNodes"]:
        assert set(node) - {"path", "hostPath"} <= {"major", "minor", "fileMode", "permissions"}


def test_each_gpu_gets_the_same_node(root: synthetic.SyntheticRoot, theirs: dict[str, Any]) -> None:
    dev = roots.Root.at(str(root.dev_root))
    by_name = {device["name"]: device["containerEdits"] for device in theirs["devices"]}
    for gpu in root.gpus:
        their = by_name[str(gpu.minor)]
        ours = devicenodes.gpu_node(dev, gpu.minor)
        assert _paths(their["deviceNodes"]) == [(ours.path, ours.host_path)]
        assert DIFFERENCES["apply-cuda-memory-limits hook"]
        assert [hook["args"][1] for hook in their.get("hooks", [])] == ["apply-cuda-memory-limits"]


def test_compute_and_utility_is_a_subset_of_all(
    root: synthetic.SyntheticRoot, theirs: dict[str, Any]
) -> None:
    default = _ours(root, discovery.DEFAULT_CAPABILITIES)
    their_mounts = {m["containerPath"] for m in theirs["containerEdits"]["mounts"]}
    assert {m.container_path for m in default.mounts} <= their_mounts
    names = {pathlib.PurePath(m.container_path).name for m in default.mounts}
    assert {"libcuda.so.580.95.05", "libnvidia-ml.so.580.95.05", "nvidia-smi"} <= names


def test_mig_capability_nodes_match_the_nodes_of_the_root(tmp_path: pathlib.Path) -> None:
    fakes = building.build(building.Flavour.PLAIN).fakes
    instances = (synthetic.MigInstance(gpu=1, gi=3, ci=0), synthetic.MigInstance(gpu=1, gi=9, ci=2))
    made = synthetic.create(tmp_path, fakes=fakes, gpu_minors=(0, 1), mig=instances)
    on_disk = {node.path.name: (node.major, node.minor) for node in made.mig_nodes}

    for instance in instances:
        nodes = devicenodes.mig_nodes(
            made.proc_root, gpu_minor=1, gpu_instance=instance.gi, compute_instance=instance.ci
        )
        assert [node.minor for node in nodes] == [instance.gi_minor, instance.ci_minor]
        for node in nodes:
            assert node.path is not None
            assert on_disk[pathlib.PurePath(node.path).name] == (node.major, node.minor)


def _paths(nodes: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((node["path"], node.get("hostPath")) for node in nodes)
