"""A stand-in for the `pynvml` module (nvidia-ml-py 13.615.71): simulated GPUs behind NVML's API.

Like the fake ``libcuda`` next to the quota library, this simulates hardware rather than mocking
calls: the GPUs of `fakegpus` (real MIG tables), GPU instances that occupy memory slices and
refuse overlaps with ``NVML_ERROR_INSUFFICIENT_RESOURCES``, compute instances inside them, MIG mode
and compute mode. `FakeNvml.module()` builds a module object with pynvml's names (these
functions, the constants and ``NVMLError`` hierarchy of `fakecodes`, the ctypes types callers
allocate) for ``sys.modules["pynvml"]``.

Deliberate differences from the real module: handles are Python objects (``ctypes.py_object``
arrays hold them), structures are `types.SimpleNamespace`, and `FakeNvml.fail` injects an error
into the next calls of a function. `test_fake_matches_pynvml` keeps names, signatures and
constants equal to the real module.
"""

# ruff: noqa: N802, N803 (pynvml's function and parameter names)

from __future__ import annotations

import ctypes
import types
import uuid
from collections.abc import Callable
from typing import Any

from tests.dra_driver.backends.nvml import fakecodes, fakegpus

#: CI profile enum → compute slices (the CI profile ID equals the enum on A100/H100).
_CI_PROFILE_SLICES = {0x0: 1, 0x1: 2, 0x2: 3, 0x3: 4, 0x4: 7}


class FakeNvml:
    """The simulated driver. Options model driver differences seen in the field."""

    def __init__(
        self,
        gpus: list[fakegpus.Gpu],
        *,
        driver_version: str = "560.35.03",
        cuda_version: int = 12060,
        profile_info_v2: bool = True,
        placements_need_mig_mode: bool = False,
        mig_change_needs_reset: bool = False,
    ) -> None:
        self.gpus = gpus
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.profile_info_v2 = profile_info_v2
        """Whether the driver has profile info v2, which carries ``name`` (``MIG 1g.5gb``)."""
        self.placements_need_mig_mode = placements_need_mig_mode
        self.mig_change_needs_reset = mig_change_needs_reset
        self.initialized = 0
        self.event_sets: dict[int, list[fakegpus.Gpu]] = {}
        """Open event sets: the GPUs registered in each."""
        self.events: list[types.SimpleNamespace] = []
        """Events NVML has for the event sets, oldest first (`emit`)."""
        self.calls: list[str] = []
        self._failures: dict[str, list[str]] = {}

    # --- test controls -------------------------------------------------------------------------

    def fail(self, function: str, error: str, *, times: int = 1) -> None:
        """Make the next `times` calls of `function` raise the NVML error named `error`."""
        self._failures.setdefault(function, []).extend([error] * times)

    def emit(
        self, gpu: fakegpus.Gpu, event_type: int, data: int = 0, *, gi: int = 0xFFFFFFFF
    ) -> None:
        """The driver has an event of `gpu` (an XID `data`) for the sets it is registered in."""
        self.events.append(
            types.SimpleNamespace(
                device=gpu,
                eventType=event_type,
                eventData=data,
                gpuInstanceId=gi,
                computeInstanceId=gi,
            )
        )

    def module(self) -> types.ModuleType:
        """A module object with pynvml's names, for ``sys.modules["pynvml"]``."""
        module = types.ModuleType("pynvml", "fake pynvml (tests)")
        vars(module).update(
            fakecodes.CONSTANTS,
            **fakecodes.ERROR_CLASSES,
            NVMLError=fakecodes.NVMLError,
            c_nvmlGpuInstancePlacement_t=fakecodes.c_nvmlGpuInstancePlacement_t,
            # Handle arrays hold Python objects here, ctypes pointers in pynvml.
            c_nvmlGpuInstance_t=ctypes.py_object,
            c_nvmlComputeInstance_t=ctypes.py_object,
        )
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(module, name, self._entry_point(name, getattr(self, name)))
        return module

    def _entry_point(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self._failures.get(name):
                raise fakecodes.nvml_error(self._failures[name].pop(0))
            if name != "nvmlInit" and not self.initialized:
                raise fakecodes.nvml_error("UNINITIALIZED")
            return function(*args, **kwargs)

        call.__name__ = name
        return call

    # --- library and system -------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.cuda_version

    # --- devices ------------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> fakegpus.Gpu:
        if not 0 <= index < len(self.gpus):
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> fakegpus.Gpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise fakecodes.nvml_error("NOT_FOUND")

    def nvmlDeviceGetUUID(self, handle: fakegpus.Gpu | fakegpus.MigDevice) -> str:
        if getattr(handle, "lost", False):
            raise fakecodes.nvml_error("GPU_IS_LOST")
        return handle.uuid

    # --- events -------------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> int:
        event_set = len(self.event_sets) + 1
        self.event_sets[event_set] = []
        return event_set

    def nvmlDeviceGetSupportedEventTypes(self, handle: fakegpus.Gpu) -> int:
        if handle.lost:
            raise fakecodes.nvml_error("GPU_IS_LOST")
        if not handle.event_types:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        return handle.event_types

    def nvmlDeviceRegisterEvents(
        self, handle: fakegpus.Gpu, eventTypes: int, eventSet: int
    ) -> None:
        if handle.lost:
            raise fakecodes.nvml_error("GPU_IS_LOST")
        if eventTypes & ~handle.event_types:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        self.event_sets[eventSet].append(handle)

    def nvmlEventSetWait_v2(self, eventSet: int, timeoutms: int) -> types.SimpleNamespace:
        """The oldest event of a registered GPU; TIMEOUT at once when there is none (no clock)."""
        registered = self.event_sets[eventSet]
        if any(gpu.lost for gpu in registered):
            raise fakecodes.nvml_error("GPU_IS_LOST")
        for event in self.events:
            if any(event.device is gpu for gpu in registered):
                self.events.remove(event)
                return event
        raise fakecodes.nvml_error("TIMEOUT")

    def nvmlEventSetFree(self, eventSet: int) -> None:
        del self.event_sets[eventSet]

    def nvmlDeviceGetMinorNumber(self, handle: fakegpus.Gpu) -> int:
        return handle.minor

    def nvmlDeviceGetName(self, handle: fakegpus.Gpu) -> str:
        return handle.name

    def nvmlDeviceGetBrand(self, handle: fakegpus.Gpu) -> int:
        return handle.brand

    def nvmlDeviceGetArchitecture(self, device: fakegpus.Gpu) -> int:
        return device.architecture

    def nvmlDeviceGetCudaComputeCapability(self, handle: fakegpus.Gpu) -> tuple[int, int]:
        return handle.capability

    def nvmlDeviceGetMemoryInfo(self, handle: fakegpus.Gpu, version: int | None = None) -> Any:
        total = handle.memory_mib * 1024 * 1024
        return types.SimpleNamespace(total=total, free=total, used=0)

    def nvmlDeviceGetPciInfo(self, handle: fakegpus.Gpu) -> Any:
        domain, bus, rest = handle.bus_id.split(":")
        return types.SimpleNamespace(
            busId=handle.bus_id,
            busIdLegacy=f"{int(domain, 16):04X}:{bus}:{rest}",
            domain=int(domain, 16),
            bus=int(bus, 16),
            device=int(rest.split(".")[0], 16),
        )

    def nvmlDeviceGetAttributes(self, device: fakegpus.Gpu) -> Any:
        if device.attributes_multiprocessors is None:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        return types.SimpleNamespace(multiprocessorCount=device.attributes_multiprocessors)

    def nvmlDeviceGetNumGpuCores(self, device: fakegpus.Gpu) -> int:
        return device.cores

    def nvmlDeviceGetComputeMode(self, handle: fakegpus.Gpu) -> int:
        return handle.compute_mode

    def nvmlDeviceSetComputeMode(self, handle: fakegpus.Gpu, mode: int) -> None:
        if mode not in (0, 2, 3):
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        handle.compute_mode = mode

    # --- MIG mode and profiles ----------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, device: fakegpus.Gpu) -> list[int]:
        _require_mig_capable(device)
        return [device.mig_current, device.mig_pending]

    def nvmlDeviceSetMigMode(self, device: fakegpus.Gpu, mode: int) -> int:
        _require_mig_capable(device)
        if mode == 0 and device.gpu_instances:
            raise fakecodes.nvml_error("IN_USE")
        device.mig_pending = mode
        if self.mig_change_needs_reset:
            return fakecodes.ERROR_CODES["RESET_REQUIRED"]
        device.mig_current = mode
        return fakecodes.CONSTANTS["NVML_SUCCESS"]

    def nvmlDeviceGetGpuInstanceProfileInfo(
        self, device: fakegpus.Gpu, profile: int, version: int = 2
    ) -> Any:
        _require_mig_capable(device)
        if not 0 <= profile < fakecodes.C.NVML_GPU_INSTANCE_PROFILE_COUNT:
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        spec = next((p for p in device.profiles if p.enum == profile), None)
        if spec is None:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        if version == 2 and not self.profile_info_v2:
            raise fakecodes.nvml_error("FUNCTION_NOT_FOUND")
        copy_engines, decoders, encoders, jpeg, ofa = spec.engines
        info = types.SimpleNamespace(
            id=spec.id,
            isP2pSupported=0,
            sliceCount=spec.slices,
            instanceCount=spec.instances,
            multiprocessorCount=spec.multiprocessors,
            copyEngineCount=copy_engines,
            decoderCount=decoders,
            encoderCount=encoders,
            jpegCount=jpeg,
            ofaCount=ofa,
            memorySizeMB=spec.memory_mib,
        )
        if version == 2:
            info.version = 0x02000098
            info.name = f"MIG {spec.name}"
        return info

    def nvmlDeviceGetGpuInstancePossiblePlacements(
        self,
        device: fakegpus.Gpu,
        profileId: int,
        placementsRef: ctypes.Array[fakecodes.c_nvmlGpuInstancePlacement_t] | None,
        countRef: ctypes._Pointer[ctypes.c_uint],
    ) -> int:
        _require_mig_capable(device)
        if self.placements_need_mig_mode and device.mig_current != 1:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        spec = device.profile_by_id(profileId)
        countRef.contents.value = len(spec.starts)
        if placementsRef is not None:
            if len(placementsRef) < len(spec.starts):
                raise fakecodes.nvml_error("INSUFFICIENT_SIZE")
            for i, start in enumerate(spec.starts):
                placementsRef[i].start = start
                placementsRef[i].size = spec.size
        return fakecodes.CONSTANTS["NVML_SUCCESS"]

    # --- GPU instances ------------------------------------------------------------------------

    def nvmlDeviceCreateGpuInstanceWithPlacement(
        self,
        device: fakegpus.Gpu,
        profileId: int,
        placement: ctypes._Pointer[fakecodes.c_nvmlGpuInstancePlacement_t],
    ) -> fakegpus.GpuInstance:
        _require_mig_enabled(device)
        spec = device.profile_by_id(profileId)
        start, size = placement.contents.start, placement.contents.size
        if start not in spec.starts or size != spec.size:
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        same_profile = [gi for gi in device.gpu_instances.values() if gi.profile is spec]
        taken = any(gi.overlaps(start, size) for gi in device.gpu_instances.values())
        if taken or len(same_profile) >= spec.instances:
            raise fakecodes.nvml_error("INSUFFICIENT_RESOURCES")
        gi_id = min(set(range(1, 15)) - set(device.gpu_instances))
        gi = fakegpus.GpuInstance(gpu=device, id=gi_id, profile=spec, start=start)
        device.gpu_instances[gi_id] = gi
        return gi

    def nvmlDeviceGetGpuInstances(
        self,
        device: fakegpus.Gpu,
        profileId: int,
        gpuInstancesRef: ctypes.Array[Any],
        countRef: ctypes._Pointer[ctypes.c_uint],
    ) -> int:
        _require_mig_enabled(device)
        spec = device.profile_by_id(profileId)
        found = [gi for gi in device.gpu_instances.values() if gi.profile is spec]
        if len(gpuInstancesRef) < len(found):
            raise fakecodes.nvml_error("INSUFFICIENT_SIZE")
        for i, gi in enumerate(found):
            gpuInstancesRef[i] = gi
        countRef.contents.value = len(found)
        return fakecodes.CONSTANTS["NVML_SUCCESS"]

    def nvmlDeviceGetGpuInstanceById(
        self, device: fakegpus.Gpu, gpuInstanceId: int
    ) -> fakegpus.GpuInstance:
        _require_mig_enabled(device)
        if gpuInstanceId not in device.gpu_instances:
            raise fakecodes.nvml_error("NOT_FOUND")
        return device.gpu_instances[gpuInstanceId]

    def nvmlGpuInstanceGetInfo(self, gpuInstance: fakegpus.GpuInstance) -> Any:
        _require_alive(gpuInstance)
        placement = fakecodes.c_nvmlGpuInstancePlacement_t(
            gpuInstance.start, gpuInstance.profile.size
        )
        return types.SimpleNamespace(
            device=gpuInstance.gpu,
            id=gpuInstance.id,
            profileId=gpuInstance.profile.id,
            placement=placement,
        )

    def nvmlGpuInstanceDestroy(self, gpuInstance: fakegpus.GpuInstance) -> int:
        _require_alive(gpuInstance)
        if gpuInstance.compute_instances:
            raise fakecodes.nvml_error("IN_USE")
        gpuInstance.alive = False
        del gpuInstance.gpu.gpu_instances[gpuInstance.id]
        return fakecodes.CONSTANTS["NVML_SUCCESS"]

    # --- compute instances --------------------------------------------------------------------

    def nvmlGpuInstanceGetComputeInstanceProfileInfo(
        self, device: fakegpus.GpuInstance, profile: int, engProfile: int, version: int = 2
    ) -> Any:
        _require_alive(device)
        if engProfile != fakecodes.C.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED:
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        slices = _CI_PROFILE_SLICES.get(profile)
        if slices is None or slices > device.profile.slices:
            raise fakecodes.nvml_error("NOT_SUPPORTED")
        return types.SimpleNamespace(
            version=version,
            id=profile,
            sliceCount=slices,
            instanceCount=device.profile.slices // slices,
            multiprocessorCount=device.profile.multiprocessors // device.profile.slices * slices,
        )

    def nvmlGpuInstanceCreateComputeInstance(
        self,
        gpuInstance: fakegpus.GpuInstance,
        profileId: int,
    ) -> fakegpus.ComputeInstance:
        _require_alive(gpuInstance)
        slices = _CI_PROFILE_SLICES.get(profileId)
        if slices is None or slices > gpuInstance.profile.slices:
            raise fakecodes.nvml_error("INVALID_ARGUMENT")
        used = sum(ci.slices for ci in gpuInstance.compute_instances.values())
        if used + slices > gpuInstance.profile.slices:
            raise fakecodes.nvml_error("INSUFFICIENT_RESOURCES")
        ci_id = min(set(range(8)) - set(gpuInstance.compute_instances))
        parent = gpuInstance.gpu.uuid
        device = fakegpus.MigDevice(
            f"MIG-{uuid.uuid5(uuid.NAMESPACE_URL, f'{parent}/{gpuInstance.id}/{ci_id}')}"
        )
        ci = fakegpus.ComputeInstance(gpuInstance, ci_id, profileId, slices, device)
        gpuInstance.compute_instances[ci_id] = ci
        return ci

    def nvmlGpuInstanceGetComputeInstances(
        self,
        gpuInstance: fakegpus.GpuInstance,
        profileId: int,
        computeInstancesRef: ctypes.Array[Any],
        countRef: ctypes._Pointer[ctypes.c_uint],
    ) -> int:
        _require_alive(gpuInstance)
        found = [ci for ci in gpuInstance.compute_instances.values() if ci.profile_id == profileId]
        if len(computeInstancesRef) < len(found):
            raise fakecodes.nvml_error("INSUFFICIENT_SIZE")
        for i, ci in enumerate(found):
            computeInstancesRef[i] = ci
        countRef.contents.value = len(found)
        return fakecodes.CONSTANTS["NVML_SUCCESS"]

    def nvmlComputeInstanceGetInfo(self, computeInstance: fakegpus.ComputeInstance) -> Any:
        _require_alive(computeInstance)
        return types.SimpleNamespace(
            device=computeInstance.device,
            gpuInstance=computeInstance.gpu_instance,
            id=computeInstance.id,
            profileId=computeInstance.profile_id,
        )

    def nvmlComputeInstanceDestroy(self, computeInstance: fakegpus.ComputeInstance) -> int:
        _require_alive(computeInstance)
        computeInstance.alive = False
        del computeInstance.gpu_instance.compute_instances[computeInstance.id]
        return fakecodes.CONSTANTS["NVML_SUCCESS"]


def _require_mig_capable(device: fakegpus.Gpu) -> None:
    if not device.profiles:
        raise fakecodes.nvml_error("NOT_SUPPORTED")


def _require_mig_enabled(device: fakegpus.Gpu) -> None:
    _require_mig_capable(device)
    if device.mig_current != 1:
        raise fakecodes.nvml_error("NOT_SUPPORTED")


def _require_alive(instance: fakegpus.GpuInstance | fakegpus.ComputeInstance) -> None:
    if not instance.alive:
        raise fakecodes.nvml_error("INVALID_ARGUMENT")
