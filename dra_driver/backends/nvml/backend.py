"""`NvmlBackend`: the `GpuBackend` for real NVIDIA GPUs, through NVML (`pynvml`).

`dra_driver.backends.open_backend("nvml")` builds it; the inventory reads `gpus()` and the
isolation managers call the rest. `pynvml` is imported when the backend is built, never when this
module is imported, so CPU-only machines need neither `pynvml` nor the driver. GPUs are discovered
once (`discovery`) and their NVML handles cached by UUID: looking handles up by UUID can take
seconds under load. Every NVML call runs inside `translating.nvml_errors`, so callers only ever see
`errors.BackendError` subclasses. Health events come from an NVML event set that the health
watcher's thread opens through `health_events` (`events`, which says what its errors mean).

Time-slice: NVML has no getter for the compute-policy time-slice, so `status()` reports the level
this backend last set (``DEFAULT`` until then) and `set_timeslice` runs ``nvidia-smi``
(`timeslicing`).
"""

from __future__ import annotations

import importlib
import os
import pathlib
import types
from collections.abc import Hashable, Sequence

import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.nvml import discovery, events, instances, timeslicing, translating
from dra_driver.backends.nvml.translating import Operation
from dra_driver.health import sources

log = structlog.get_logger(__name__)


class NvmlBackend:
    """Real GPUs through NVML. Open at construction; `close()` shuts NVML down."""

    def __init__(
        self,
        *,
        sysfs_root: pathlib.Path = pathlib.Path("/sys"),
        nvidia_smi: str | os.PathLike[str] = "nvidia-smi",
        timeslice_timeout_s: float = timeslicing.DEFAULT_TIMEOUT_S,
    ) -> None:
        """Load `pynvml`, initialise NVML and discover the GPUs.

        `sysfs_root` is where PCIe roots and NUMA nodes are read; `nvidia_smi` the executable that
        sets time-slices. A missing `pynvml` or a failing ``nvmlInit`` raises
        `errors.BackendUnavailableError`.
        """
        self._nvml = _load_pynvml()
        self._nvidia_smi = nvidia_smi
        self._timeslice_timeout_s = timeslice_timeout_s
        self._timeslices: dict[str, hardware.TimesliceInterval] = {}
        self._closed = False
        with translating.nvml_errors(self._nvml, Operation.INIT):
            self._nvml.nvmlInit()
        try:
            with translating.nvml_errors(self._nvml, Operation.DISCOVER):
                found = discovery.discover(self._nvml, sysfs_root=sysfs_root)
        except BaseException:
            self.close()
            raise
        self._gpus = tuple(gpu.info for gpu in found)
        self._found = {gpu.info.uuid: gpu for gpu in found}
        log.info(
            "nvml.opened",
            gpus=len(self._gpus),
            driver_version=self._gpus[0].driver_version if self._gpus else None,
        )

    def __enter__(self) -> NvmlBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def gpus(self) -> Sequence[hardware.GpuInfo]:
        """Every GPU of the node, ordered by index, as discovered when the backend opened."""
        return self._gpus

    def mig_version(self) -> Hashable | None:
        """None: NVML tells nobody when an admin changes MIG, so `status` is read every time."""
        return None

    def status(self, gpu_uuid: str) -> hardware.GpuStatus:
        """MIG mode, MIG instances, compute mode (read from NVML now) and the time-slice.

        The time-slice is the level this backend last set, ``DEFAULT`` before that: NVML cannot
        read it back. MIG instances are those of the profiles discovered at start-up; a GPU
        instance without a compute instance is listed with ``uuid=""`` and
        ``compute_instance_id=-1`` (see `instances.list_instances`).
        """
        gpu = self._gpu(gpu_uuid)
        with translating.nvml_errors(self._nvml, Operation.READ_STATUS, gpu_uuid=gpu_uuid):
            mig_enabled = self._mig_mode(gpu)[0]
            found = (
                instances.list_instances(self._nvml, gpu.handle, gpu.info) if mig_enabled else []
            )
            compute_mode = int(self._nvml.nvmlDeviceGetComputeMode(gpu.handle))
        return hardware.GpuStatus(
            uuid=gpu_uuid,
            mig_enabled=mig_enabled,
            mig_instances=tuple(found),
            compute_mode=_compute_mode(compute_mode, gpu_uuid=gpu_uuid),
            timeslice=self._timeslices.get(gpu_uuid, hardware.TimesliceInterval.DEFAULT),
        )

    def set_mig_mode(self, gpu_uuid: str, *, enabled: bool) -> None:
        """Turn MIG mode on or off (a no-op if it already is).

        Refused (`errors.MigModeError`) while MIG instances exist, on GPUs without MIG, and when
        the change stays pending (Ampere may need a GPU reset to apply it).
        """
        gpu = self._gpu(gpu_uuid)
        nvml = self._nvml
        wanted = int(nvml.NVML_DEVICE_MIG_ENABLE if enabled else nvml.NVML_DEVICE_MIG_DISABLE)
        with translating.nvml_errors(nvml, Operation.SET_MIG_MODE, gpu_uuid=gpu_uuid):
            current, pending = self._raw_mig_mode(gpu)
            if current == wanted and pending == wanted:
                return
            if not enabled and (existing := instances.list_instances(nvml, gpu.handle, gpu.info)):
                raise errors.MigModeError(
                    f"cannot disable MIG mode on GPU {gpu_uuid}: {len(existing)} MIG instances "
                    "exist; destroy them first"
                )
            activation = nvml.nvmlDeviceSetMigMode(gpu.handle, wanted)
            current, pending = self._raw_mig_mode(gpu)
        if current != wanted:
            raise errors.MigModeError(
                f"MIG mode of GPU {gpu_uuid} did not change (current {current}, pending {pending},"
                f" activation status {translating.code_name(nvml, activation)}): the GPU may"
                " need a reset, or processes still use it"
            )
        log.info("nvml.mig.mode_set", gpu_uuid=gpu_uuid, enabled=enabled)

    def create_mig_instance(
        self, gpu_uuid: str, *, profile_id: int, placement: hardware.Placement
    ) -> hardware.MigInstance:
        """A GPU instance at exactly `placement` and one compute instance spanning it.

        If the compute instance cannot be made, the GPU instance is destroyed before raising.
        """
        gpu = self._gpu(gpu_uuid)
        profile = _profile(gpu.info, profile_id)
        if placement not in profile.placements:
            raise errors.MigError(
                f"placement {placement} is not one of profile {profile.name} on GPU {gpu_uuid}:"
                f" {list(profile.placements)}"
            )
        nvml = self._nvml
        with translating.nvml_errors(nvml, Operation.CREATE_GPU_INSTANCE, gpu_uuid=gpu_uuid):
            gi = instances.create_gpu_instance(nvml, gpu.handle, profile, placement)
        try:
            with translating.nvml_errors(
                nvml, Operation.CREATE_COMPUTE_INSTANCE, gpu_uuid=gpu_uuid
            ):
                gi_id = instances.gpu_instance_id(nvml, gi)
                ci = instances.create_compute_instance(nvml, gi, profile)
        except BaseException as error:
            self._roll_back(gi, gpu_uuid=gpu_uuid, error=error)
            raise
        instance = hardware.MigInstance(
            parent_uuid=gpu_uuid,
            profile_id=profile.profile_id,
            profile_name=profile.name,
            placement=placement,
            uuid=ci.device_uuid,
            gpu_instance_id=gi_id,
            compute_instance_id=ci.id,
        )
        log.info(
            "nvml.mig.created",
            gpu_uuid=gpu_uuid,
            mig_uuid=instance.uuid,
            profile=profile.name,
            placement_start=placement.start,
            placement_size=placement.size,
            gpu_instance_id=gi_id,
            compute_instance_id=ci.id,
        )
        return instance

    def destroy_mig_instance(self, gpu_uuid: str, *, gpu_instance_id: int) -> None:
        """Destroy a GPU instance and its compute instances; gone already → InstanceNotFoundError."""
        gpu = self._gpu(gpu_uuid)
        nvml = self._nvml
        with translating.nvml_errors(nvml, Operation.FIND_GPU_INSTANCE, gpu_uuid=gpu_uuid):
            gi = instances.find_gpu_instance(nvml, gpu.handle, gpu_instance_id)
        with translating.nvml_errors(nvml, Operation.DESTROY_INSTANCE, gpu_uuid=gpu_uuid):
            instances.destroy_gpu_instance(nvml, gi)
        log.info("nvml.mig.destroyed", gpu_uuid=gpu_uuid, gpu_instance_id=gpu_instance_id)

    def set_compute_mode(self, gpu_uuid: str, mode: hardware.ComputeMode) -> None:
        gpu = self._gpu(gpu_uuid)
        with translating.nvml_errors(self._nvml, Operation.SET_COMPUTE_MODE, gpu_uuid=gpu_uuid):
            self._nvml.nvmlDeviceSetComputeMode(gpu.handle, mode.value)
        log.info("nvml.compute_mode.set", gpu_uuid=gpu_uuid, mode=mode.name)

    def set_timeslice(self, gpu_uuid: str, interval: hardware.TimesliceInterval) -> None:
        """Run ``nvidia-smi compute-policy``; remember the level for `status()`."""
        self._gpu(gpu_uuid)
        timeslicing.set_timeslice(
            self._nvidia_smi,
            gpu_uuid=gpu_uuid,
            interval=interval,
            timeout_s=self._timeslice_timeout_s,
        )
        self._timeslices[gpu_uuid] = interval
        log.info("nvml.timeslice.set", gpu_uuid=gpu_uuid, interval=interval.name)

    def health_events(self) -> sources.EventSource:
        """NVML's XID and ECC events of the discovered GPUs (see `events`)."""
        return events.NvmlEventSource.of(self._nvml, list(self._found.values()))

    def close(self) -> None:
        """Shut NVML down; idempotent. A failing shutdown is logged, not raised."""
        if self._closed:
            return
        self._closed = True
        try:
            with translating.nvml_errors(self._nvml, Operation.SHUTDOWN):
                self._nvml.nvmlShutdown()
        except errors.BackendError as error:
            log.warning("nvml.shutdown_failed", error=str(error))
            return
        log.info("nvml.closed")

    def _gpu(self, gpu_uuid: str) -> discovery.DiscoveredGpu:
        if self._closed:
            raise errors.BackendUnavailableError("the NVML backend is closed")
        try:
            return self._found[gpu_uuid]
        except KeyError:
            raise errors.UnknownGpuError(
                f"no GPU with UUID {gpu_uuid!r} on this node (it has {sorted(self._found)})"
            ) from None

    def _raw_mig_mode(self, gpu: discovery.DiscoveredGpu) -> tuple[int, int]:
        current, pending = self._nvml.nvmlDeviceGetMigMode(gpu.handle)
        return int(current), int(pending)

    def _mig_mode(self, gpu: discovery.DiscoveredGpu) -> tuple[bool, bool]:
        """(current, pending) MIG mode; both off on a GPU without MIG."""
        try:
            current, pending = self._raw_mig_mode(gpu)
        except self._nvml.NVMLError as error:
            if translating.is_unsupported(self._nvml, error):
                return False, False
            raise
        enable = int(self._nvml.NVML_DEVICE_MIG_ENABLE)
        return current == enable, pending == enable

    def _roll_back(self, gi: object, *, gpu_uuid: str, error: BaseException) -> None:
        try:
            with translating.nvml_errors(self._nvml, Operation.DESTROY_INSTANCE, gpu_uuid=gpu_uuid):
                instances.destroy_gpu_instance(self._nvml, gi)
        except errors.BackendError as rollback_error:
            log.error("nvml.mig.rollback_failed", gpu_uuid=gpu_uuid, error=str(rollback_error))
            error.add_note(f"the GPU instance could not be destroyed either: {rollback_error}")
            return
        log.warning("nvml.mig.rolled_back", gpu_uuid=gpu_uuid, error=str(error))


def _load_pynvml() -> types.ModuleType:
    try:
        return importlib.import_module("pynvml")
    except ImportError as error:
        raise errors.BackendUnavailableError(
            "the NVML backend needs the 'pynvml' module (package nvidia-ml-py, extra 'nvml' of"
            " this project); install it, or use --gpus fake:<spec> on machines without GPUs"
        ) from error


def _profile(info: hardware.GpuInfo, profile_id: int) -> hardware.MigProfile:
    try:
        return info.mig_profile(profile_id)
    except KeyError:
        raise errors.MigError(
            f"GPU {info.uuid} has no MIG profile with ID {profile_id}"
            f" (it has {[(p.profile_id, p.name) for p in info.mig_profiles]})"
        ) from None


def _compute_mode(value: int, *, gpu_uuid: str) -> hardware.ComputeMode:
    try:
        return hardware.ComputeMode(value)
    except ValueError:
        raise errors.BackendError(
            f"GPU {gpu_uuid} is in NVML compute mode {value}, which this driver does not manage"
            " (only DEFAULT=0 and EXCLUSIVE_PROCESS=3)"
        ) from None
