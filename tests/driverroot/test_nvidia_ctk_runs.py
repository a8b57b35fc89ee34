"""``nvidia-ctk cdi generate`` runs on the synthetic driver root with the fake NVML and finds all of
it (tests/driverroot/nvidiactk.py), so that a broken reference fails here, loudly, and not as a
puzzling difference in the comparison with our own spec:

- every library, binary, firmware file and the persistenced socket is mounted from the root;
- the control nodes are common device nodes, each GPU a device by index and by UUID with its
  ``/dev/nvidia<minor>`` (minors from the fake NVML, not the index);
- the hooks create the SONAME and dev links, update the ld cache of the library directory and
  enable CUDA compat for the driver version, all through the given hook path;
- the management mode puts every node into its one ``all`` device.

The first run builds the toolkit (a minute or two, cached afterwards), hence the long timeout.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from tests.driverroot import nvidiactk, synthetic
from tests.preload import building

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mknod of device nodes needs root"),
    pytest.mark.timeout(900),
]

HOOK = "/opt/gpu-dra/bin/nvidia-cdi-hook"


@pytest.fixture(scope="module")
def fakes() -> pathlib.Path:
    return building.build(building.Flavour.PLAIN).fakes


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, fakes: pathlib.Path) -> synthetic.SyntheticRoot:
    return synthetic.create(tmp_path_factory.mktemp("node"), fakes=fakes, gpu_minors=(0, 1))


@pytest.fixture(scope="module")
def spec(root: synthetic.SyntheticRoot) -> dict[str, Any]:
    return nvidiactk.generate(root, hook_path=HOOK)


def _hook_args(edits: dict[str, Any], name: str) -> list[list[str]]:
    return [hook["args"][2:] for hook in edits.get("hooks", []) if hook["args"][1] == name]


def test_every_file_of_the_root_is_mounted(
    root: synthetic.SyntheticRoot, spec: dict[str, Any]
) -> None:
    mounts = {m["containerPath"]: m["hostPath"] for m in spec["containerEdits"]["mounts"]}
    files = (
        *(lib.file for lib in root.libraries),
        *root.binaries,
        *root.firmware,
        *root.sockets,
    )
    for file in files:
        assert mounts.get(root.container_path(file)) == str(file)


def test_control_nodes_are_common_device_nodes(
    root: synthetic.SyntheticRoot, spec: dict[str, Any]
) -> None:
    nodes = {n["path"]: n for n in spec["containerEdits"]["deviceNodes"]}
    assert set(nodes) == {root.container_path(n.path) for n in root.control_nodes}
    for node in root.control_nodes:
        found = nodes[root.container_path(node.path)]
        assert (found["hostPath"], found["major"], found.get("minor", 0)) == (
            str(node.path),
            node.major,
            node.minor,
        )


def test_each_gpu_is_a_device_by_index_and_by_uuid(
    root: synthetic.SyntheticRoot, spec: dict[str, Any]
) -> None:
    devices = {d["name"]: d["containerEdits"] for d in spec["devices"]}
    assert set(devices) == {"0", "1", "all", *(g.uuid for g in root.gpus)}
    for index, gpu in enumerate(root.gpus):
        for name in (str(index), gpu.uuid):
            (node,) = devices[name]["deviceNodes"]
            assert node["path"] == f"/dev/nvidia{gpu.minor}"
            assert node["hostPath"] == str(gpu.node.path)


def test_device_minors_come_from_nvml(tmp_path: pathlib.Path, fakes: pathlib.Path) -> None:
    root = synthetic.create(tmp_path, fakes=fakes, gpu_minors=(2, 5), ld_cache=False)
    devices = {
        d["name"]: d["containerEdits"] for d in nvidiactk.generate(root, hook_path=HOOK)["devices"]
    }
    assert [devices[i]["deviceNodes"][0]["minor"] for i in ("0", "1")] == [2, 5]


def test_hooks_link_libraries_and_update_the_ld_cache(
    root: synthetic.SyntheticRoot, spec: dict[str, Any]
) -> None:
    edits = spec["containerEdits"]
    assert {hook["path"] for hook in edits["hooks"]} == {HOOK}
    links = {
        arg for args in _hook_args(edits, "create-symlinks") for arg in args if arg != "--link"
    }
    directory = "/" + synthetic.LIBRARY_DIR
    for library in root.libraries:
        for link in library.links:
            assert f"{os.readlink(link)}::{directory}/{link.name}" in links
    assert _hook_args(edits, "update-ldcache") == [["--folder", directory]]
    assert _hook_args(edits, "enable-cuda-compat") == [
        [f"--host-driver-version={root.driver_version}"]
    ]
    assert f"NVIDIA_CTK_LIBCUDA_DIR={directory}" in edits["env"]


def test_management_mode_puts_every_node_into_one_device(
    root: synthetic.SyntheticRoot,
) -> None:
    spec = nvidiactk.generate(root, hook_path=HOOK, mode=nvidiactk.Mode.MANAGEMENT)
    (device,) = spec["devices"]
    assert device["name"] == "all"
    paths = {n["path"] for n in device["containerEdits"]["deviceNodes"]}
    assert paths >= {root.container_path(g.node.path) for g in root.gpus}
    assert paths >= {root.container_path(n.path) for n in root.control_nodes}
    assert {"/dev/nvidia-caps/nvidia-cap1", "/dev/nvidia-caps/nvidia-cap2"} <= paths
    assert "deviceNodes" not in spec["containerEdits"]


def test_a_failing_run_says_why(tmp_path: pathlib.Path, fakes: pathlib.Path) -> None:
    root = synthetic.create(tmp_path, fakes=fakes, ld_cache=False)
    for library in root.libraries:
        library.file.unlink()
    with pytest.raises(nvidiactk.GenerateError, match="exited with"):
        nvidiactk.generate(root, hook_path=HOOK)
