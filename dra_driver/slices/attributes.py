"""Device attributes shared by every device type: a GPU's identity and its place in the topology.

Version attributes must be semantic versions (no leading zeros), so NVML's ``560.35.03`` is
published as ``560.35.3`` and ``8.0`` as ``8.0.0``.
"""

from __future__ import annotations

import re

from dra_driver import hardware
from dra_driver.slices import wire

STANDARD_DOMAIN = "resource.kubernetes.io"
PCI_BUS_ID = f"{STANDARD_DOMAIN}/pciBusID"
PCIE_ROOT = f"{STANDARD_DOMAIN}/pcieRoot"
NUMA_NODE = f"{STANDARD_DOMAIN}/numaNode"

_NUMBERS = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def semver(text: str) -> str:
    """NVML's dotted numbers as a semantic version: ``560.35.03`` → ``560.35.3``.

    Missing parts are zero; parts past the third become build metadata (``1.2.3.4`` →
    ``1.2.3+4``), which semver ignores when comparing.
    """
    if not _NUMBERS.match(text):
        raise ValueError(f"not a dotted version number: {text!r}")
    parts = [str(int(part)) for part in text.split(".")]
    core = ".".join([*parts, "0", "0"][:3])
    return f"{core}+{'.'.join(parts[3:])}" if len(parts) > 3 else core


def string(value: str) -> wire.DeviceAttribute:
    return {"string": value}


def integer(value: int) -> wire.DeviceAttribute:
    return {"int": value}


def boolean(value: bool) -> wire.DeviceAttribute:
    return {"bool": value}


def version(value: str) -> wire.DeviceAttribute:
    return {"version": semver(value)}


def identity(gpu: hardware.GpuInfo) -> dict[str, wire.DeviceAttribute]:
    """What every device carved from `gpu` says about the GPU it lives on."""
    attributes = {
        "productName": string(gpu.product_name),
        "brand": string(gpu.brand),
        "architecture": string(gpu.architecture),
        "cudaComputeCapability": version(gpu.cuda_compute_capability),
        "driverVersion": version(gpu.driver_version),
        "cudaDriverVersion": version(gpu.cuda_driver_version),
        PCI_BUS_ID: string(gpu.pci_bus_id),
    }
    if gpu.pcie_root:  # unknown on some hosts; never publish an empty topology key
        attributes[PCIE_ROOT] = string(gpu.pcie_root)
    if gpu.numa_node is not None:
        attributes[NUMA_NODE] = integer(gpu.numa_node)
    return attributes
