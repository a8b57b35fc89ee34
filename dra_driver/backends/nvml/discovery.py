"""Building `hardware.GpuInfo` and `hardware.MigProfile` from NVML, once, when the backend opens.

Each field comes from one NVML call (``nvmlDeviceGet<Field>``), PCI topology from sysfs (`sysfs`),
readable names from `naming`. NVML has no call for the SM count of a whole GPU, so
`multiprocessors` takes ``nvmlDeviceGetAttributes().multiprocessorCount`` where the driver answers
it and otherwise CUDA cores (``nvmlDeviceGetNumGpuCores``) divided by the cores per SM of the
compute capability.

MIG profiles: every GPU-instance profile enum up to ``NVML_GPU_INSTANCE_PROFILE_COUNT`` is asked
for (``nvmlDeviceGetGpuInstanceProfileInfo``); those the GPU lacks answer NOT_SUPPORTED,
INVALID_ARGUMENT or NOT_FOUND and are skipped. NVML documents that placements
(``nvmlDeviceGetGpuInstancePossiblePlacements``) can be refused while MIG mode is off; a GPU whose
placements are refused is reported without profiles (and logged), because a profile without
placements cannot be used. Enable MIG mode and restart the driver to see them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import pathlib
import types
from typing import Any

import structlog

from dra_driver import hardware
from dra_driver.backends.nvml import naming, sysfs, translating

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class DiscoveredGpu:
    """A GPU's facts and the NVML handle to act on it (an opaque ctypes pointer)."""

    info: hardware.GpuInfo
    handle: object


class _PlacementsRefusedError(Exception):
    """NVML refused to list placements (MIG mode off on this driver)."""


def discover(nvml: types.ModuleType, *, sysfs_root: pathlib.Path) -> list[DiscoveredGpu]:
    """Every GPU NVML sees, ordered by index. NVML errors propagate untranslated."""
    driver_version = text(nvml.nvmlSystemGetDriverVersion())
    cuda_version = cuda_driver_version(int(nvml.nvmlSystemGetCudaDriverVersion_v2()))
    found = []
    for index in range(int(nvml.nvmlDeviceGetCount())):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = _gpu_info(
            nvml,
            handle,
            index=index,
            driver_version=driver_version,
            cuda_driver_version=cuda_version,
            sysfs_root=sysfs_root,
        )
        log.info(
            "nvml.gpu.discovered",
            index=index,
            uuid=info.uuid,
            product_name=info.product_name,
            mig_profiles=[profile.name for profile in info.mig_profiles],
        )
        found.append(DiscoveredGpu(info=info, handle=handle))
    return found


def cuda_driver_version(value: int) -> str:
    """``nvmlSystemGetCudaDriverVersion_v2`` encodes 12.6 as 12060."""
    return f"{value // 1000}.{value % 1000 // 10}"


def text(value: object) -> str:
    """A string from pynvml, which returns `bytes` from some structures and `str` from others."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _gpu_info(
    nvml: types.ModuleType,
    handle: object,
    *,
    index: int,
    driver_version: str,
    cuda_driver_version: str,
    sysfs_root: pathlib.Path,
) -> hardware.GpuInfo:
    uuid = text(nvml.nvmlDeviceGetUUID(handle))
    major, minor = (int(part) for part in nvml.nvmlDeviceGetCudaComputeCapability(handle))
    memory_bytes = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    bus_id = sysfs.normalize_bus_id(text(nvml.nvmlDeviceGetPciInfo(handle).busId))
    pcie_root = sysfs.pcie_root(bus_id, sysfs_root=sysfs_root)
    if pcie_root is None:
        log.warning("nvml.sysfs.pcie_root_unknown", uuid=uuid, pci_bus_id=bus_id)
    return hardware.GpuInfo(
        index=index,
        minor=int(nvml.nvmlDeviceGetMinorNumber(handle)),
        uuid=uuid,
        product_name=text(nvml.nvmlDeviceGetName(handle)),
        brand=naming.brand(nvml, int(nvml.nvmlDeviceGetBrand(handle))),
        architecture=naming.architecture(
            nvml, int(nvml.nvmlDeviceGetArchitecture(handle)), capability=(major, minor)
        ),
        cuda_compute_capability=f"{major}.{minor}",
        driver_version=driver_version,
        cuda_driver_version=cuda_driver_version,
        memory_bytes=memory_bytes,
        multiprocessors=multiprocessors(nvml, handle, uuid=uuid, capability=(major, minor)),
        pci_bus_id=bus_id,
        pcie_root=pcie_root or "",
        numa_node=sysfs.numa_node(bus_id, sysfs_root=sysfs_root),
        mig_profiles=mig_profiles(nvml, handle, uuid=uuid, memory_bytes=memory_bytes),
    )


def multiprocessors(
    nvml: types.ModuleType, handle: object, *, uuid: str, capability: tuple[int, int]
) -> int:
    """The SM count of the whole GPU (see the module docstring); 0 when NVML cannot tell."""
    try:
        count = int(nvml.nvmlDeviceGetAttributes(handle).multiprocessorCount)
    except nvml.NVMLError as error:
        if not translating.is_unsupported(nvml, error):
            raise
        count = 0
    if count > 0:
        return count
    per_sm = naming.cores_per_multiprocessor(capability)
    try:
        cores = int(nvml.nvmlDeviceGetNumGpuCores(handle))
    except nvml.NVMLError as error:
        if not translating.is_unsupported(nvml, error):
            raise
        cores = 0
    if per_sm and cores:
        return cores // per_sm
    log.warning("nvml.gpu.multiprocessors_unknown", uuid=uuid)
    return 0


def mig_profiles(
    nvml: types.ModuleType, handle: object, *, uuid: str, memory_bytes: int
) -> tuple[hardware.MigProfile, ...]:
    """The GPU-instance profiles with their placements; empty for a GPU without MIG."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as error:
        if translating.is_unsupported(nvml, error):
            return ()
        raise
    mig_enabled = int(current) == int(nvml.NVML_DEVICE_MIG_ENABLE)
    found: dict[int, hardware.MigProfile] = {}
    for profile_enum in range(int(nvml.NVML_GPU_INSTANCE_PROFILE_COUNT)):
        try:
            profile = _mig_profile(nvml, handle, profile_enum, memory_bytes=memory_bytes)
        except _PlacementsRefusedError:
            log.warning(
                "nvml.mig.placements_unavailable",
                uuid=uuid,
                profile_enum=profile_enum,
                mig_enabled=mig_enabled,
            )
            if not mig_enabled:
                return ()
            continue
        if profile is not None and profile.profile_id not in found:
            found[profile.profile_id] = profile
    return tuple(sorted(found.values(), key=lambda p: (p.compute_slices, p.memory_bytes, p.name)))


def _mig_profile(
    nvml: types.ModuleType, handle: object, profile_enum: int, *, memory_bytes: int
) -> hardware.MigProfile | None:
    try:
        info = _profile_info(nvml, handle, profile_enum)
    except nvml.NVMLError as error:
        if translating.is_unsupported(nvml, error):
            return None
        raise
    profile_id = int(info.id)
    return hardware.MigProfile(
        name=naming.mig_profile_name(
            nvml,
            nvml_name=text(getattr(info, "name", "")),
            profile_enum=profile_enum,
            compute_slices=int(info.sliceCount),
            memory_mib=int(info.memorySizeMB),
            gpu_memory_bytes=memory_bytes,
        ),
        profile_id=profile_id,
        compute_slices=int(info.sliceCount),
        max_instances=int(info.instanceCount),
        memory_bytes=int(info.memorySizeMB) * hardware.MIB,
        multiprocessors=int(info.multiprocessorCount),
        copy_engines=int(info.copyEngineCount),
        decoders=int(info.decoderCount),
        encoders=int(info.encoderCount),
        jpeg_engines=int(info.jpegCount),
        ofa_engines=int(info.ofaCount),
        placements=placements(nvml, handle, profile_id),
    )


def _profile_info(nvml: types.ModuleType, handle: object, profile_enum: int) -> Any:
    """Profile info v2 (with the name); v1 on drivers that lack the versioned call."""
    try:
        return nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile_enum)
    except nvml.NVMLError as error:
        if not translating.is_error(nvml, error, "FUNCTION_NOT_FOUND"):
            raise
    return nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile_enum, version=1)


def placements(
    nvml: types.ModuleType, handle: object, profile_id: int
) -> tuple[hardware.Placement, ...]:
    """``nvmlDeviceGetGpuInstancePossiblePlacements``: ask for the count, then fill an array."""
    count = ctypes.c_uint(0)
    try:
        nvml.nvmlDeviceGetGpuInstancePossiblePlacements(
            handle, profile_id, None, ctypes.pointer(count)
        )
        array = (nvml.c_nvmlGpuInstancePlacement_t * max(count.value, 1))()
        nvml.nvmlDeviceGetGpuInstancePossiblePlacements(
            handle, profile_id, array, ctypes.pointer(count)
        )
    except nvml.NVMLError as error:
        if translating.is_error(nvml, error, "NOT_SUPPORTED"):
            raise _PlacementsRefusedError from error
        raise
    return tuple(
        sorted(hardware.Placement(int(p.start), int(p.size)) for p in array[: count.value])
    )
