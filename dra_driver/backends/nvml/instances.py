"""MIG instances through NVML: list, create at a placement, destroy.

A MIG device is a GPU instance (GI, the memory slices and engines at a placement) with a compute
instance (CI, the SMs) inside it. Creating one is two NVML steps, so a failure of the second undoes
the first: a GI without a CI blocks its placement and is of no use to anyone. Destroying goes
children first (CIs, then the GI).

NVML fills caller-allocated ctypes arrays (``nvmlDeviceGetGpuInstances``,
``nvmlGpuInstanceGetComputeInstances``): they are sized by the profile's ``instanceCount``, as NVML
documents, and the count comes back through a pointer. NVML errors propagate untranslated; the
backend wraps the calls in `translating.nvml_errors` with the operation at hand.
"""

from __future__ import annotations

import ctypes
import dataclasses
import types
from typing import Protocol

import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.nvml import discovery, translating

log = structlog.get_logger(__name__)


class _ComputeProfileInfo(Protocol):
    """The fields we read of ``c_nvmlComputeInstanceProfileInfo_v2_t``."""

    id: int
    sliceCount: int  # noqa: N815 (NVML's name)
    instanceCount: int  # noqa: N815 (NVML's name)


@dataclasses.dataclass(frozen=True)
class ComputeInstance:
    """A CI inside a GI: its handle, ID and the UUID of the MIG device it makes."""

    handle: object
    id: int
    device_uuid: str


def list_instances(
    nvml: types.ModuleType, handle: object, gpu: hardware.GpuInfo
) -> list[hardware.MigInstance]:
    """Every GI on the GPU (of the profiles discovered at start-up), one entry per CI inside it.

    A GI without a CI (left behind by a crash between the two create steps, or made by hand) is
    listed with ``uuid=""`` and ``compute_instance_id=-1``, so that start-up cleanup can see and
    destroy it.
    """
    found: list[hardware.MigInstance] = []
    for profile in gpu.mig_profiles:
        for gi in _gpu_instances(nvml, handle, profile):
            info = nvml.nvmlGpuInstanceGetInfo(gi)
            placement = hardware.Placement(int(info.placement.start), int(info.placement.size))
            gi_id = int(info.id)
            cis = compute_instances(nvml, gi)
            if not cis:
                log.warning(
                    "nvml.mig.gpu_instance_without_compute_instance",
                    gpu_uuid=gpu.uuid,
                    gpu_instance_id=gi_id,
                )
            found.extend(
                hardware.MigInstance(
                    parent_uuid=gpu.uuid,
                    profile_id=profile.profile_id,
                    profile_name=profile.name,
                    placement=placement,
                    uuid=ci.device_uuid,
                    gpu_instance_id=gi_id,
                    compute_instance_id=ci.id,
                )
                for ci in cis or [ComputeInstance(handle=None, id=-1, device_uuid="")]
            )
    return sorted(found, key=lambda i: (i.placement, i.gpu_instance_id, i.compute_instance_id))


def create_gpu_instance(
    nvml: types.ModuleType,
    handle: object,
    profile: hardware.MigProfile,
    placement: hardware.Placement,
) -> object:
    """``nvmlDeviceCreateGpuInstanceWithPlacement`` → the GI's handle."""
    c_placement = nvml.c_nvmlGpuInstancePlacement_t(placement.start, placement.size)
    return nvml.nvmlDeviceCreateGpuInstanceWithPlacement(
        handle, profile.profile_id, ctypes.pointer(c_placement)
    )


def gpu_instance_id(nvml: types.ModuleType, gi: object) -> int:
    """``nvmlGpuInstanceGetInfo(gi).id``."""
    return int(nvml.nvmlGpuInstanceGetInfo(gi).id)


def create_compute_instance(
    nvml: types.ModuleType, gi: object, profile: hardware.MigProfile
) -> ComputeInstance:
    """One CI spanning the whole GI: the CI profile with the GI's slice count, shared engines."""
    ci_profile_id = _compute_profile_id(nvml, gi, compute_slices=profile.compute_slices)
    ci = nvml.nvmlGpuInstanceCreateComputeInstance(gi, ci_profile_id)
    info = nvml.nvmlComputeInstanceGetInfo(ci)
    return ComputeInstance(ci, int(info.id), discovery.text(nvml.nvmlDeviceGetUUID(info.device)))


def find_gpu_instance(nvml: types.ModuleType, handle: object, gpu_instance_id: int) -> object:
    """``nvmlDeviceGetGpuInstanceById``."""
    return nvml.nvmlDeviceGetGpuInstanceById(handle, gpu_instance_id)


def destroy_gpu_instance(nvml: types.ModuleType, gi: object) -> None:
    """Destroy the CIs inside a GI, then the GI."""
    for ci in compute_instances(nvml, gi):
        nvml.nvmlComputeInstanceDestroy(ci.handle)
    nvml.nvmlGpuInstanceDestroy(gi)


def compute_instances(nvml: types.ModuleType, gi: object) -> list[ComputeInstance]:
    """Every CI in a GI, of any CI profile, ordered by ID."""
    found: dict[int, ComputeInstance] = {}
    for ci_profile_enum in range(int(nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT)):
        ci_profile = _compute_profile_info(nvml, gi, ci_profile_enum)
        if ci_profile is None or int(ci_profile.instanceCount) == 0:
            continue
        array = (nvml.c_nvmlComputeInstance_t * int(ci_profile.instanceCount))()
        count = ctypes.c_uint(0)
        nvml.nvmlGpuInstanceGetComputeInstances(
            gi, int(ci_profile.id), array, ctypes.pointer(count)
        )
        for ci in array[: count.value]:
            info = nvml.nvmlComputeInstanceGetInfo(ci)
            uuid = discovery.text(nvml.nvmlDeviceGetUUID(info.device))
            found.setdefault(int(info.id), ComputeInstance(ci, int(info.id), uuid))
    return [found[ci_id] for ci_id in sorted(found)]


def _gpu_instances(
    nvml: types.ModuleType, handle: object, profile: hardware.MigProfile
) -> list[object]:
    array = (nvml.c_nvmlGpuInstance_t * max(profile.max_instances, 1))()
    count = ctypes.c_uint(0)
    nvml.nvmlDeviceGetGpuInstances(handle, profile.profile_id, array, ctypes.pointer(count))
    return list(array[: count.value])


def _compute_profile_id(nvml: types.ModuleType, gi: object, *, compute_slices: int) -> int:
    for ci_profile_enum in range(int(nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT)):
        ci_profile = _compute_profile_info(nvml, gi, ci_profile_enum)
        if ci_profile is not None and int(ci_profile.sliceCount) == compute_slices:
            return int(ci_profile.id)
    raise errors.MigError(
        f"no compute-instance profile with {compute_slices} slices in this GPU instance"
    )


def _compute_profile_info(
    nvml: types.ModuleType, gi: object, ci_profile_enum: int
) -> _ComputeProfileInfo | None:
    try:
        info: _ComputeProfileInfo = nvml.nvmlGpuInstanceGetComputeInstanceProfileInfo(
            gi, ci_profile_enum, nvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED
        )
    except nvml.NVMLError as error:
        if translating.is_unsupported(nvml, error):
            return None
        raise
    return info
