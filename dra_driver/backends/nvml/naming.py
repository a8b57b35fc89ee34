"""Readable names for NVML enums: brands, architectures and MIG profile names.

These strings become ResourceSlice attribute values that users match in CEL selectors, so they
follow NVIDIA's own DRA driver (``Tesla``, ``Nvidia``, ``GeForce``…; ``Ampere``, ``Ada Lovelace``,
``Hopper``…) and ``nvidia-smi mig -lgip`` (``1g.5gb``, ``1g.5gb+me``). Tables are keyed by the
``pynvml`` constant names, so a constant that an older `pynvml` lacks is simply skipped.
"""

from __future__ import annotations

import math
import types
from typing import TypeVar

from dra_driver import hardware

UNKNOWN = "Unknown"

_T = TypeVar("_T")

_BRANDS = {
    "NVML_BRAND_QUADRO": "Quadro",
    "NVML_BRAND_TESLA": "Tesla",
    "NVML_BRAND_NVS": "NVS",
    "NVML_BRAND_GRID": "Grid",
    "NVML_BRAND_GEFORCE": "GeForce",
    "NVML_BRAND_TITAN": "Titan",
    "NVML_BRAND_NVIDIA_VAPPS": "NvidiaVApps",
    "NVML_BRAND_NVIDIA_VPC": "NvidiaVPC",
    "NVML_BRAND_NVIDIA_VCS": "NvidiaVCS",
    "NVML_BRAND_NVIDIA_VWS": "NvidiaVWS",
    "NVML_BRAND_NVIDIA_CLOUD_GAMING": "NvidiaCloudGaming",
    "NVML_BRAND_QUADRO_RTX": "QuadroRTX",
    "NVML_BRAND_NVIDIA_RTX": "NvidiaRTX",
    "NVML_BRAND_NVIDIA": "Nvidia",
    "NVML_BRAND_GEFORCE_RTX": "GeForceRTX",
    "NVML_BRAND_TITAN_RTX": "TitanRTX",
    "NVML_BRAND_NVIDIA_DLA": "NvidiaDLA",
    "NVML_BRAND_NVIDIA_VGAMEDEV": "NvidiaVGameDev",
    "NVML_BRAND_NVIDIA_NPU": "NvidiaNPU",
}

_ARCHITECTURES = {
    "NVML_DEVICE_ARCH_KEPLER": "Kepler",
    "NVML_DEVICE_ARCH_MAXWELL": "Maxwell",
    "NVML_DEVICE_ARCH_PASCAL": "Pascal",
    "NVML_DEVICE_ARCH_VOLTA": "Volta",
    "NVML_DEVICE_ARCH_TURING": "Turing",
    "NVML_DEVICE_ARCH_AMPERE": "Ampere",
    "NVML_DEVICE_ARCH_ADA": "Ada Lovelace",
    "NVML_DEVICE_ARCH_HOPPER": "Hopper",
    "NVML_DEVICE_ARCH_BLACKWELL": "Blackwell",
    "NVML_DEVICE_ARCH_RUBIN": "Rubin",
}

# When the driver predates the GPU, NVML says UNKNOWN; the compute capability still tells.
_ARCHITECTURE_BY_CAPABILITY = {
    (3, None): "Kepler",
    (5, None): "Maxwell",
    (6, None): "Pascal",
    (7, 0): "Volta",
    (7, 2): "Volta",
    (7, 5): "Turing",
    (8, 9): "Ada Lovelace",
    (8, None): "Ampere",
    (9, None): "Hopper",
    (10, None): "Blackwell",
    (12, None): "Blackwell",
}

# CUDA cores per SM by compute capability (as CUDA's samples tabulate it, `_ConvertSMVer2Cores`).
_CORES_PER_SM = {
    (3, None): 192,
    (5, None): 128,
    (6, 0): 64,
    (6, None): 128,
    (7, None): 64,
    (8, 0): 64,
    (8, None): 128,
    (9, None): 128,
    (10, None): 128,
    (12, None): 128,
}

# Profile attributes that NVML encodes in the enum, not in the slice count.
_PROFILE_SUFFIXES = {
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1": "+me",
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1": "+me",
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX": "+gfx",
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX": "+gfx",
    "NVML_GPU_INSTANCE_PROFILE_3_SLICE_GFX": "+gfx",
    "NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX": "+gfx",
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME": "-me",
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME": "-me",
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME": "+me.all",
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME": "+me.all",
}


def brand(nvml: types.ModuleType, value: int) -> str:
    """``nvmlDeviceGetBrand`` → e.g. ``Tesla``, ``Nvidia``, ``GeForce``."""
    return _lookup(nvml, _BRANDS, value)


def architecture(nvml: types.ModuleType, value: int, *, capability: tuple[int, int]) -> str:
    """``nvmlDeviceGetArchitecture`` → e.g. ``Ampere``; from the compute capability if unknown."""
    name = _lookup(nvml, _ARCHITECTURES, value)
    if name != UNKNOWN:
        return name
    return _by_capability(_ARCHITECTURE_BY_CAPABILITY, capability) or UNKNOWN


def cores_per_multiprocessor(capability: tuple[int, int]) -> int | None:
    """CUDA cores per SM for a compute capability; ``None`` for one not in the table."""
    return _by_capability(_CORES_PER_SM, capability)


def mig_profile_name(
    nvml: types.ModuleType,
    *,
    nvml_name: str,
    profile_enum: int,
    compute_slices: int,
    memory_mib: int,
    gpu_memory_bytes: int,
) -> str:
    """The canonical profile name, e.g. ``1g.5gb`` or ``1g.5gb+me``.

    NVML's own name (profile info v2 and later: ``MIG 1g.5gb``) wins, without the ``MIG`` prefix.
    Otherwise it is built the way NVIDIA's tools round it: the profile's share of the GPU's memory
    rounded up to eighths, times the GPU's memory in whole GiB (39.25 GiB of 40 → ``40gb``).
    """
    name = nvml_name.strip().removeprefix("MIG").strip()
    if name:
        return name
    if gpu_memory_bytes > 0:
        share = math.ceil(memory_mib * hardware.MIB / gpu_memory_bytes * 8) / 8
        gigabytes = _round_half_up(share * math.ceil(gpu_memory_bytes / hardware.GIB))
    else:
        gigabytes = _round_half_up(memory_mib / 1024)
    suffix = next(
        (s for n, s in _PROFILE_SUFFIXES.items() if getattr(nvml, n, None) == profile_enum), ""
    )
    return f"{compute_slices}g.{gigabytes}gb{suffix}"


def _round_half_up(value: float) -> int:
    # Not round(): 70.5 GB is "71gb" in NVIDIA's names, and round() goes to the even 70.
    return math.floor(value + 0.5)


def _lookup(nvml: types.ModuleType, table: dict[str, str], value: int) -> str:
    for constant, name in table.items():
        if getattr(nvml, constant, None) == value:
            return name
    return UNKNOWN


def _by_capability(
    table: dict[tuple[int, int | None], _T], capability: tuple[int, int]
) -> _T | None:
    major, minor = capability
    return table.get((major, minor), table.get((major, None)))
