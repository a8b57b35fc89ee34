"""Readable names for NVML enums, checked against the constants of the real `pynvml`.

Covers: brands and architectures (and the compute-capability fallback when the driver predates
the GPU), CUDA cores per SM, and MIG profile names: NVML's own name without ``MIG``, and names
built from slices and memory for A100, H100 and H200 profiles when NVML gives none.
"""

from __future__ import annotations

import types

import pytest

from dra_driver import hardware
from dra_driver.backends.nvml import naming


@pytest.fixture(scope="module")
def pynvml() -> types.ModuleType:
    module: types.ModuleType = pytest.importorskip("pynvml")
    return module


@pytest.mark.parametrize(
    ("constant", "name"),
    [
        ("NVML_BRAND_TESLA", "Tesla"),
        ("NVML_BRAND_GEFORCE", "GeForce"),
        ("NVML_BRAND_QUADRO_RTX", "QuadroRTX"),
        ("NVML_BRAND_NVIDIA", "Nvidia"),
        ("NVML_BRAND_UNKNOWN", "Unknown"),
    ],
)
def test_brand(pynvml: types.ModuleType, constant: str, name: str) -> None:
    assert naming.brand(pynvml, getattr(pynvml, constant)) == name


@pytest.mark.parametrize(
    ("constant", "capability", "name"),
    [
        ("NVML_DEVICE_ARCH_KEPLER", (3, 5), "Kepler"),
        ("NVML_DEVICE_ARCH_VOLTA", (7, 0), "Volta"),
        ("NVML_DEVICE_ARCH_TURING", (7, 5), "Turing"),
        ("NVML_DEVICE_ARCH_AMPERE", (8, 0), "Ampere"),
        ("NVML_DEVICE_ARCH_ADA", (8, 9), "Ada Lovelace"),
        ("NVML_DEVICE_ARCH_HOPPER", (9, 0), "Hopper"),
        ("NVML_DEVICE_ARCH_BLACKWELL", (10, 0), "Blackwell"),
        ("NVML_DEVICE_ARCH_UNKNOWN", (8, 6), "Ampere"),
        ("NVML_DEVICE_ARCH_UNKNOWN", (8, 9), "Ada Lovelace"),
        ("NVML_DEVICE_ARCH_UNKNOWN", (12, 0), "Blackwell"),
        ("NVML_DEVICE_ARCH_UNKNOWN", (42, 0), "Unknown"),
    ],
    ids=lambda value: None if isinstance(value, str) else f"{value[0]}.{value[1]}",
)
def test_architecture(
    pynvml: types.ModuleType, constant: str, capability: tuple[int, int], name: str
) -> None:
    value = getattr(pynvml, constant)
    assert naming.architecture(pynvml, value, capability=capability) == name


@pytest.mark.parametrize(
    ("capability", "cores", "sms"),
    [((7, 0), 5120, 80), ((8, 0), 6912, 108), ((8, 9), 7424, 58), ((9, 0), 16896, 132)],
    ids=["V100", "A100", "L4", "H100-SXM"],
)
def test_cores_per_multiprocessor(capability: tuple[int, int], cores: int, sms: int) -> None:
    per_sm = naming.cores_per_multiprocessor(capability)
    assert per_sm is not None
    assert cores // per_sm == sms


def test_nvml_profile_name_wins(pynvml: types.ModuleType) -> None:
    name = naming.mig_profile_name(
        pynvml,
        nvml_name="MIG 1g.5gb+me",
        profile_enum=pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1,
        compute_slices=1,
        memory_mib=4864,
        gpu_memory_bytes=40960 * hardware.MIB,
    )
    assert name == "1g.5gb+me"


@pytest.mark.parametrize(
    ("enum", "slices", "memory_mib", "gpu_mib", "name"),
    [
        ("1_SLICE", 1, 4864, 40960, "1g.5gb"),
        ("1_SLICE_REV1", 1, 4864, 40960, "1g.5gb+me"),
        ("7_SLICE", 7, 40192, 40960, "7g.40gb"),
        ("1_SLICE_REV2", 1, 19968, 81920, "1g.20gb"),
        ("1_SLICE", 1, 9984, 81559, "1g.10gb"),
        ("3_SLICE", 3, 40448, 81559, "3g.40gb"),
        ("7_SLICE", 7, 81152, 81559, "7g.80gb"),
        ("1_SLICE", 1, 16384, 143771, "1g.18gb"),
        ("2_SLICE", 2, 33280, 143771, "2g.35gb"),
        ("3_SLICE", 3, 66560, 143771, "3g.71gb"),
        ("7_SLICE", 7, 143360, 143771, "7g.141gb"),
        ("1_SLICE_GFX", 1, 16384, 143771, "1g.18gb+gfx"),
    ],
    ids=lambda value: value if isinstance(value, str) and "g." in value else None,
)
def test_profile_name_built_from_slices_and_memory(
    pynvml: types.ModuleType,
    *,
    enum: str,
    slices: int,
    memory_mib: int,
    gpu_mib: int,
    name: str,
) -> None:
    built = naming.mig_profile_name(
        pynvml,
        nvml_name="",
        profile_enum=getattr(pynvml, f"NVML_GPU_INSTANCE_PROFILE_{enum}"),
        compute_slices=slices,
        memory_mib=memory_mib,
        gpu_memory_bytes=gpu_mib * hardware.MIB,
    )
    assert built == name
