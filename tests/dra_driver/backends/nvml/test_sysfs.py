"""PCI addressing and topology from sysfs.

Covers: bus IDs from NVML normalized to the sysfs/Kubernetes form, malformed IDs, the PCIe root
of a resolved device path (including domains above ffff), and NUMA nodes (``-1``, missing, junk).
"""

from __future__ import annotations

import pathlib

import pytest

from dra_driver.backends.nvml import sysfs


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        pytest.param("00000000:07:00.0", "0000:07:00.0", id="nvml-eight-digit-domain"),
        pytest.param("00000000:C1:00.0", "0000:c1:00.0", id="upper-case"),
        pytest.param("0000:3B:00.0", "0000:3b:00.0", id="legacy-four-digit"),
        pytest.param("00010000:01:00.1", "10000:01:00.1", id="vmd-domain"),
        pytest.param(" 00000000:07:00.0\n", "0000:07:00.0", id="whitespace"),
    ],
)
def test_normalize_bus_id(raw: str, normalized: str) -> None:
    assert sysfs.normalize_bus_id(raw) == normalized


@pytest.mark.parametrize("raw", ["", "07:00.0", "0000:07:00", "0000:07:00.8", "zzzz:07:00.0"])
def test_malformed_bus_id(raw: str) -> None:
    with pytest.raises(ValueError, match="not a PCI bus ID"):
        sysfs.normalize_bus_id(raw)


def _device(root: pathlib.Path, bus_id: str, path: str, numa: str | None) -> None:
    device = root / "devices" / path
    device.mkdir(parents=True)
    if numa is not None:
        (device / "numa_node").write_text(numa)
    links = root / "bus" / "pci" / "devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / bus_id).symlink_to(device)


@pytest.mark.parametrize(
    ("bus_id", "path", "root"),
    [
        pytest.param(
            "0000:07:00.0", "pci0000:00/0000:00:01.0/0000:07:00.0", "pci0000:00", id="behind-bridge"
        ),
        pytest.param("0000:00:05.0", "pci0000:00/0000:00:05.0", "pci0000:00", id="on-root"),
        pytest.param(
            "10000:01:00.0", "pci10000:00/10000:00:02.0/10000:01:00.0", "pci10000:00", id="vmd"
        ),
    ],
)
def test_pcie_root(tmp_path: pathlib.Path, bus_id: str, path: str, root: str) -> None:
    _device(tmp_path, bus_id, path, numa="0")
    assert sysfs.pcie_root(bus_id, sysfs_root=tmp_path) == root


def test_pcie_root_of_a_device_sysfs_lacks(tmp_path: pathlib.Path) -> None:
    assert sysfs.pcie_root("0000:07:00.0", sysfs_root=tmp_path) is None


@pytest.mark.parametrize(
    ("numa", "expected"),
    [("1\n", 1), ("-1\n", None), (None, None), ("junk", None)],
    ids=["node-1", "unknown", "missing", "junk"],
)
def test_numa_node(tmp_path: pathlib.Path, numa: str | None, expected: int | None) -> None:
    _device(tmp_path, "0000:07:00.0", "pci0000:00/0000:07:00.0", numa)
    assert sysfs.numa_node("0000:07:00.0", sysfs_root=tmp_path) == expected
