"""Fixtures for the NVML backend: a fake `pynvml` with one A100-SXM4-40GB and one L4, a sysfs tree
for their PCI topology, a recording ``nvidia-smi`` stand-in, and the backend built on all three.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from dra_driver.backends.nvml import backend
from tests.dra_driver.backends.nvml import fakegpus, fakenvml

A100_UUID = "GPU-5a1d6c48-3b8f-2f6e-9a2d-0c1f7e9b4a01"
L4_UUID = "GPU-0b7e2d91-64c3-5f0a-8e17-3d2c9a6f5b02"

#: Bus ID (sysfs form) → (path below /sys/devices, NUMA node as the kernel writes it).
SYSFS_DEVICES = {
    "0000:07:00.0": ("pci0000:00/0000:00:01.0/0000:07:00.0", "0\n"),
    "0000:c1:00.0": ("pci0000:c0/0000:c0:03.1/0000:c1:00.0", "-1\n"),
}

#: Records its arguments next to itself, one per line, and succeeds.
RECORDING_NVIDIA_SMI = """#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/argv.txt"
echo "Set timeslice for GPU"
"""


@pytest.fixture
def fake_gpus() -> list[fakegpus.Gpu]:
    return [fakegpus.a100(uuid=A100_UUID), fakegpus.l4(uuid=L4_UUID)]


@pytest.fixture
def nvml_options() -> dict[str, Any]:
    """Driver behaviours for `fake_nvml` (see `fakenvml.FakeNvml`); tests override it."""
    return {}


@pytest.fixture
def fake_nvml(
    monkeypatch: pytest.MonkeyPatch, fake_gpus: list[fakegpus.Gpu], nvml_options: dict[str, Any]
) -> fakenvml.FakeNvml:
    """The fake driver, installed as ``sys.modules["pynvml"]`` for the test."""
    fake = fakenvml.FakeNvml(fake_gpus, **nvml_options)
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    return fake


@pytest.fixture
def sysfs_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """``<root>/devices/pci…/<bus id>/numa_node`` and the ``bus/pci/devices`` symlinks to them."""
    root = tmp_path / "sys"
    links = root / "bus" / "pci" / "devices"
    links.mkdir(parents=True)
    for bus_id, (path, numa) in SYSFS_DEVICES.items():
        device = root / "devices" / path
        device.mkdir(parents=True)
        (device / "numa_node").write_text(numa)
        (links / bus_id).symlink_to(pathlib.Path("../../../devices") / path)
    return root


@pytest.fixture
def nvidia_smi(tmp_path: pathlib.Path) -> pathlib.Path:
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text(RECORDING_NVIDIA_SMI)
    script.chmod(0o755)
    return script


@pytest.fixture
def nvml_backend(
    fake_nvml: fakenvml.FakeNvml, sysfs_root: pathlib.Path, nvidia_smi: pathlib.Path
) -> Iterator[backend.NvmlBackend]:
    opened = backend.NvmlBackend(sysfs_root=sysfs_root, nvidia_smi=nvidia_smi)
    yield opened
    opened.close()


@pytest.fixture
def mig_enabled(fake_gpus: list[fakegpus.Gpu]) -> None:
    """The A100 starts with MIG mode on."""
    fake_gpus[0].mig_current = fake_gpus[0].mig_pending = 1
