"""PCI topology of a GPU from sysfs: bus ID normalization, PCIe root complex and NUMA node.

NVML reports the PCI bus ID (``00000000:07:00.0``); where the device hangs in the PCI tree is read
from Linux sysfs, the way Kubernetes' standard attributes ``resource.kubernetes.io/pcieRoot`` and
``resource.kubernetes.io/numaNode`` define them. The sysfs root is a parameter so tests can point it
at a temporary tree.
"""

from __future__ import annotations

import os
import pathlib
import re

_BUS_ID = re.compile(
    r"^(?P<domain>[0-9a-fA-F]{1,8}):(?P<bus>[0-9a-fA-F]{2}):(?P<device>[0-9a-fA-F]{2})"
    r"\.(?P<function>[0-7])$"
)
# A root complex directory in /sys/devices, e.g. "pci0000:00" (domains above ffff: "pci10000:00").
_PCIE_ROOT = re.compile(r"^pci[0-9a-f]{4,}:[0-9a-f]{2}$")


def normalize_bus_id(raw: str) -> str:
    """The bus ID as sysfs and Kubernetes write it: ``00000000:07:00.0`` → ``0000:07:00.0``.

    Lower case, a domain of at least four hex digits (NVML pads to eight).
    """
    match = _BUS_ID.match(raw.strip())
    if match is None:
        raise ValueError(f"not a PCI bus ID: {raw!r}")
    domain = int(match["domain"], 16)
    return f"{domain:04x}:{match['bus'].lower()}:{match['device'].lower()}.{match['function']}"


def device_path(bus_id: str, *, sysfs_root: pathlib.Path) -> pathlib.Path:
    """``<sysfs>/bus/pci/devices/<bus id>``, a symlink into the ``<sysfs>/devices`` tree."""
    return sysfs_root / "bus" / "pci" / "devices" / bus_id


def pcie_root(bus_id: str, *, sysfs_root: pathlib.Path) -> str | None:
    """The root complex above the device, e.g. ``pci0000:00``; ``None`` if sysfs does not say.

    The resolved device path reads ``/sys/devices/pci0000:00/0000:00:01.0/0000:07:00.0``: the first
    ``pciDDDD:BB`` component is the root.
    """
    path = device_path(bus_id, sysfs_root=sysfs_root)
    if not path.exists():
        return None
    for part in pathlib.Path(os.path.realpath(path)).parts:
        if _PCIE_ROOT.match(part):
            return part
    return None


def numa_node(bus_id: str, *, sysfs_root: pathlib.Path) -> int | None:
    """The NUMA node of the device; ``None`` when unknown (the kernel writes ``-1``) or unreadable."""
    try:
        text = (device_path(bus_id, sysfs_root=sysfs_root) / "numa_node").read_text()
        node = int(text.strip())
    except (OSError, ValueError):
        return None
    return node if node >= 0 else None
