"""Device nodes: the control nodes that exist, a GPU's node, a MIG device's capability nodes.

Covers: required control nodes (nvidiactl, nvidia-uvm) refused when missing, optional ones added
where present, host paths under a dev root seen elsewhere; a GPU node missing; MIG capability nodes
with minors from the proc tree and the major of nvidia-caps; a missing capability file named in the
error; a proc without nvidia-caps.
"""

from __future__ import annotations

import pathlib

import pytest

from dra_driver.cdi import spec
from dra_driver.driverroot import devicenodes, errors, roots
from tests.dra_driver.driverroot import layouts


@pytest.fixture
def dev(tmp_path: pathlib.Path) -> roots.Root:
    for node in ("nvidiactl", "nvidia-uvm", "nvidia0"):
        layouts.file(tmp_path / "dev-root", f"/dev/{node}")
    return roots.Root.at("/run/nvidia/driver", str(tmp_path / "dev-root"))


def test_control_nodes_are_the_ones_that_exist_by_host_path(dev: roots.Root) -> None:
    assert devicenodes.control_nodes(dev) == (
        spec.DeviceNode(path="/dev/nvidia-uvm", host_path="/run/nvidia/driver/dev/nvidia-uvm"),
        spec.DeviceNode(path="/dev/nvidiactl", host_path="/run/nvidia/driver/dev/nvidiactl"),
    )
    layouts.file(dev.view, "/dev/nvidia-modeset")

    assert devicenodes.control_nodes(dev)[0].path == "/dev/nvidia-modeset"


@pytest.mark.parametrize("missing", ["nvidiactl", "nvidia-uvm"])
def test_a_missing_required_control_node_is_an_incomplete_driver(
    dev: roots.Root, missing: str
) -> None:
    (dev.view / "dev" / missing).unlink()

    with pytest.raises(errors.IncompleteDriverRootError, match=f"/run/nvidia/driver/dev/{missing}"):
        devicenodes.control_nodes(dev)


def test_a_gpus_node_must_exist(dev: roots.Root) -> None:
    assert devicenodes.gpu_node(dev, 0).host_path == "/run/nvidia/driver/dev/nvidia0"
    with pytest.raises(errors.IncompleteDriverRootError, match=r"dev/nvidia1 .*does not exist"):
        devicenodes.gpu_node(dev, 1)


def test_mig_capability_nodes_come_from_the_proc_tree(tmp_path: pathlib.Path) -> None:
    layouts.proc(tmp_path, caps_major=509)
    layouts.mig_capability(tmp_path, gpu_minor=2, gi=7, ci=0, gi_minor=93, ci_minor=94)

    nodes = devicenodes.mig_nodes(tmp_path, gpu_minor=2, gpu_instance=7, compute_instance=0)

    assert nodes == (
        spec.DeviceNode(path="/dev/nvidia-caps/nvidia-cap93", type="c", major=509, minor=93),
        spec.DeviceNode(path="/dev/nvidia-caps/nvidia-cap94", type="c", major=509, minor=94),
    )


def test_a_missing_capability_file_is_named(tmp_path: pathlib.Path) -> None:
    layouts.proc(tmp_path)
    layouts.mig_capability(tmp_path, gpu_minor=0, gi=1, ci=0, gi_minor=12, ci_minor=13)
    expected = str(tmp_path / "driver/nvidia/capabilities/gpu0/mig/gi1/ci2/access")

    with pytest.raises(errors.MigCapabilityError) as raised:
        devicenodes.mig_nodes(tmp_path, gpu_minor=0, gpu_instance=1, compute_instance=2)

    assert expected in str(raised.value)


def test_a_proc_without_nvidia_caps_is_refused(tmp_path: pathlib.Path) -> None:
    layouts.proc(tmp_path, caps_major=None)
    layouts.mig_capability(tmp_path, gpu_minor=0, gi=1, ci=0, gi_minor=12, ci_minor=13)

    with pytest.raises(errors.MigCapabilityError, match="no nvidia-caps"):
        devicenodes.mig_nodes(tmp_path, gpu_minor=0, gpu_instance=1, compute_instance=0)
