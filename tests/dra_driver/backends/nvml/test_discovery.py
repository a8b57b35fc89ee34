"""What the NVML backend discovers about GPUs, on a fake NVML with an A100-SXM4-40GB and an L4.

Covers: identity and version fields, PCI bus ID normalization, PCIe root and NUMA node from sysfs,
SM counts (from ``nvmlDeviceGetAttributes``, else CUDA cores per SM), the A100's MIG profiles with
their exact placements and engines, profile names built when NVML gives none, profiles of a GPU
whose driver refuses placements while MIG is off, and agreement with the fake backend's catalog.
"""

from __future__ import annotations

import pathlib

import pytest

from dra_driver import hardware
from dra_driver.backends.fake import catalog
from dra_driver.backends.nvml import backend
from tests.dra_driver.backends.nvml import conftest

P = hardware.Placement
MIB = hardware.MIB


def test_gpus_in_index_order(nvml_backend: backend.NvmlBackend) -> None:
    assert [(gpu.index, gpu.uuid) for gpu in nvml_backend.gpus()] == [
        (0, conftest.A100_UUID),
        (1, conftest.L4_UUID),
    ]


@pytest.mark.parametrize(
    ("field", "a100", "l4"),
    [
        pytest.param("minor", 0, 1, id="minor"),
        pytest.param("product_name", "NVIDIA A100-SXM4-40GB", "NVIDIA L4", id="product-name"),
        pytest.param("brand", "Nvidia", "Nvidia", id="brand"),
        pytest.param("architecture", "Ampere", "Ada Lovelace", id="architecture"),
        pytest.param("cuda_compute_capability", "8.0", "8.9", id="compute-capability"),
        pytest.param("driver_version", "560.35.03", "560.35.03", id="driver-version"),
        pytest.param("cuda_driver_version", "12.6", "12.6", id="cuda-driver-version"),
        pytest.param("memory_bytes", 40960 * MIB, 23034 * MIB, id="memory"),
        pytest.param("multiprocessors", 108, 58, id="sms-from-attributes-else-cores"),
        pytest.param("pci_bus_id", "0000:07:00.0", "0000:c1:00.0", id="bus-id-normalized"),
        pytest.param("pcie_root", "pci0000:00", "pci0000:c0", id="pcie-root"),
        pytest.param("numa_node", 0, None, id="numa-node-minus-one-is-none"),
        pytest.param("mig_capable", True, False, id="mig-capable"),
    ],
)
def test_gpu_fields(
    nvml_backend: backend.NvmlBackend, field: str, a100: object, l4: object
) -> None:
    found_a100, found_l4 = nvml_backend.gpus()
    assert (getattr(found_a100, field), getattr(found_l4, field)) == (a100, l4)


@pytest.mark.parametrize(
    ("name", "profile_id", "max_instances", "memory_mib", "sms", "placements"),
    [
        pytest.param("1g.5gb", 19, 7, 4864, 14, [P(s, 1) for s in range(7)], id="1g.5gb"),
        pytest.param("1g.5gb+me", 20, 1, 4864, 14, [P(s, 1) for s in range(7)], id="1g.5gb+me"),
        pytest.param("1g.10gb", 15, 4, 9856, 14, [P(s, 2) for s in (0, 2, 4, 6)], id="1g.10gb"),
        pytest.param("2g.10gb", 14, 3, 9856, 28, [P(s, 2) for s in (0, 2, 4)], id="2g.10gb"),
        pytest.param("3g.20gb", 9, 2, 19968, 42, [P(0, 4), P(4, 4)], id="3g.20gb"),
        pytest.param("4g.20gb", 5, 1, 19968, 56, [P(0, 4)], id="4g.20gb"),
        pytest.param("7g.40gb", 0, 1, 40192, 98, [P(0, 8)], id="7g.40gb"),
    ],
)
def test_a100_mig_profiles(
    nvml_backend: backend.NvmlBackend,
    *,
    name: str,
    profile_id: int,
    max_instances: int,
    memory_mib: int,
    sms: int,
    placements: list[hardware.Placement],
) -> None:
    profile = nvml_backend.gpus()[0].mig_profile(profile_id)
    assert profile.name == name
    assert profile.max_instances == max_instances
    assert profile.memory_bytes == memory_mib * MIB
    assert profile.multiprocessors == sms
    assert list(profile.placements) == placements


def test_a100_profiles_ordered_small_to_large(nvml_backend: backend.NvmlBackend) -> None:
    assert [p.name for p in nvml_backend.gpus()[0].mig_profiles] == [
        "1g.5gb",
        "1g.5gb+me",
        "1g.10gb",
        "2g.10gb",
        "3g.20gb",
        "4g.20gb",
        "7g.40gb",
    ]


def test_engines_and_slices(nvml_backend: backend.NvmlBackend) -> None:
    media = nvml_backend.gpus()[0].mig_profile(20)
    assert (media.compute_slices, media.copy_engines, media.decoders, media.encoders) == (
        1,
        1,
        1,
        0,
    )
    assert (media.jpeg_engines, media.ofa_engines) == (1, 1)
    full = nvml_backend.gpus()[0].mig_profile(0)
    assert (full.compute_slices, full.copy_engines, full.decoders) == (7, 7, 5)


def test_agrees_with_the_fake_backend_catalog(nvml_backend: backend.NvmlBackend) -> None:
    model = catalog.MODELS["A100-40GB"]
    a100 = nvml_backend.gpus()[0]
    assert a100.mig_profiles == model.mig_profiles
    assert (a100.product_name, a100.brand, a100.architecture) == (
        model.product_name,
        model.brand,
        model.architecture,
    )
    assert (a100.memory_bytes, a100.multiprocessors) == (model.memory_bytes, model.multiprocessors)


@pytest.mark.parametrize("nvml_options", [{"profile_info_v2": False}], ids=["v1-profile-info"])
def test_profile_names_built_when_nvml_gives_none(nvml_backend: backend.NvmlBackend) -> None:
    assert [p.name for p in nvml_backend.gpus()[0].mig_profiles] == [
        "1g.5gb",
        "1g.5gb+me",
        "1g.10gb",
        "2g.10gb",
        "3g.20gb",
        "4g.20gb",
        "7g.40gb",
    ]


@pytest.mark.parametrize(
    "nvml_options", [{"placements_need_mig_mode": True}], ids=["placements-need-mig"]
)
def test_no_profiles_when_driver_refuses_placements_with_mig_off(
    nvml_backend: backend.NvmlBackend,
) -> None:
    assert nvml_backend.gpus()[0].mig_profiles == ()


@pytest.mark.usefixtures("mig_enabled")
@pytest.mark.parametrize(
    "nvml_options", [{"placements_need_mig_mode": True}], ids=["placements-need-mig"]
)
def test_profiles_when_driver_needs_mig_mode_and_it_is_on(
    nvml_backend: backend.NvmlBackend,
) -> None:
    assert len(nvml_backend.gpus()[0].mig_profiles) == 7


@pytest.mark.usefixtures("fake_nvml")
def test_missing_sysfs_leaves_topology_unknown(tmp_path: pathlib.Path) -> None:
    with backend.NvmlBackend(sysfs_root=tmp_path / "empty") as opened:
        a100 = opened.gpus()[0]
    assert (a100.pcie_root, a100.numa_node) == ("", None)
