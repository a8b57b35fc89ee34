"""What a claim's devices get on the node besides files: MIG instances, time slices, MPS daemons
and the compute mode they need.

`Isolator.isolate` takes one planned device to its isolated form (what it did, recorded as the
typed `model.Isolation`); `Isolator.release` undoes it for a prepared or half-prepared claim,
keeping what another claim still holds (a MIG device an admin-access claim shares, the MPS daemon
serving a GPU's shares). The prepare flow (`preparing`) decides when; the isolation managers
(`isolation`) do the work on the backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from api import devicetypes
from api.v1alpha1 import sharing, types
from dra_driver import claims, hardware, inventory, locating, planning
from dra_driver.backends import GpuBackend
from dra_driver.checkpoint import model
from dra_driver.isolation import migs, mps, timeslicing
from dra_driver.slices import settings

log = structlog.get_logger(__name__)


class Isolator:
    def __init__(
        self,
        backend: GpuBackend,
        *,
        node_name: str,
        publish: settings.PublishSettings,
        daemons: mps.Daemons,
        ledger: migs.Ledger,
    ) -> None:
        self.backend = backend
        self.node_name = node_name
        self.publish = publish
        self.daemons = daemons
        self.ledger = ledger

    def isolate(
        self,
        device: model.PreparedDevice,
        located: locating.LocatedDevice,
        config: types.Config | None,
        uid: str,
        state: model.Checkpoint,
    ) -> tuple[model.PreparedDevice, hardware.MigInstance | None]:
        """The device isolated as its type and config ask, and its MIG instance if it is one
        (`state`: what every claim holds, for a daemon that fails to start)."""
        isolation = device.isolation
        instance = None
        mps_config = config.sharing if config is not None else None
        if located.type is devicetypes.DeviceType.GPU and not device.admin_access:
            migs.whole_gpu(self.backend, located.gpu)
            if isinstance(mps_config, sharing.TimeSlicingConfig):
                interval = timeslicing.apply(self.backend, located.gpu.uuid, mps_config)
                isolation = dataclasses.replace(isolation, time_slice=interval)
        if located.type is devicetypes.DeviceType.MIG:
            instance = migs.ensure(self.backend, located, self.ledger)
            ours = None if located.admin_mig is not None else instance.gpu_instance_id
            device = dataclasses.replace(device, mig_uuid=instance.uuid, mig_gpu_instance_id=ours)
        if located.type is devicetypes.DeviceType.SHARED:
            memory, cores = planning.share_limits(device, located, self.publish)
            isolation = dataclasses.replace(isolation, quota=model.Quota(memory, cores))
            if self.publish.shared.strategy_for(located.gpu) is settings.SharingStrategy.MPS:
                # One daemon per GPU serves all its shares; each client's compute is capped by
                # CUDA_MPS_ACTIVE_THREAD_PERCENTAGE in its container, its memory by the quota.
                spec = mps.DaemonSpec(id=f"gpu-{located.gpu.index}", devices=(located.gpu.uuid,))
                attached = self._start_mps(spec, located.gpu.uuid, exclusive=True, held=state)
                isolation = dataclasses.replace(isolation, mps=attached)
        if isinstance(mps_config, sharing.MpsConfig) and not device.admin_access:
            target = device.mig_uuid or located.gpu.uuid
            spec = mps.DaemonSpec(
                id=f"claim-{uid[:8]}-{device.device}",
                devices=(target,),
                active_thread_percentage=mps_config.default_active_thread_percentage,
                pinned_memory=planning.pinned(mps_config, target),
            )
            whole = located.type is devicetypes.DeviceType.GPU
            attached = self._start_mps(spec, located.gpu.uuid, exclusive=whole, held=state)
            isolation = dataclasses.replace(isolation, mps=attached)
        return dataclasses.replace(device, isolation=isolation), instance

    def _start_mps(
        self, spec: mps.DaemonSpec, gpu_uuid: str, *, exclusive: bool, held: model.Checkpoint
    ) -> model.MpsAttachment:
        if exclusive:  # MPS needs the GPU in exclusive-process mode for everyone on it
            self.backend.set_compute_mode(gpu_uuid, hardware.ComputeMode.EXCLUSIVE_PROCESS)
        try:
            pipe = self.daemons.ensure(spec)
        except mps.MpsError as exc:
            if exclusive and not _held_by_others(held, "", _served_by(spec.id)):
                self.backend.set_compute_mode(gpu_uuid, hardware.ComputeMode.DEFAULT)
            raise claims.ClaimError(str(exc)) from exc
        return model.MpsAttachment(
            daemon=spec.id,
            pipe_dir=str(pipe),
            shm_dir=str(self.daemons.shm_dir(spec.id)),
            exclusive=exclusive,
        )

    def release(self, prepared: model.PreparedClaim, state: model.Checkpoint) -> None:
        """Release what `prepared`'s devices hold, but what another claim of `state` holds too;
        safe to repeat and on half-prepared claims."""
        for device in prepared.devices:
            dynamic = device.isolation.mig is model.MigOrigin.DYNAMIC
            if dynamic and _holds_device(state, prepared.uid, device):
                log.info("mig.kept", device=device.device, reason="another claim holds it")
                dynamic = False
            if dynamic and device.mig_gpu_instance_id is not None:
                migs.destroy(
                    self.backend,
                    device.gpu_uuid,
                    gpu_instance_id=device.mig_gpu_instance_id,
                    ledger=self.ledger,
                )
            elif dynamic:  # interrupted between creating the instance and recording it
                slot = self._mig_slot(device)
                if slot is not None:
                    migs.destroy_at(
                        self.backend,
                        device.gpu_uuid,
                        profile_id=slot[0],
                        placement=slot[1],
                        ledger=self.ledger,
                    )
            if device.isolation.time_slice is not None:
                timeslicing.reset(self.backend, device.gpu_uuid)
            attached = device.isolation.mps
            if attached and not _held_by_others(state, prepared.uid, _served_by(attached.daemon)):
                self.daemons.stop(attached.daemon)
                if attached.exclusive:
                    self.backend.set_compute_mode(device.gpu_uuid, hardware.ComputeMode.DEFAULT)

    def _mig_slot(self, device: model.PreparedDevice) -> tuple[int, hardware.Placement] | None:
        node = inventory.Inventory(
            node_name=self.node_name,
            gpus=tuple(
                inventory.GpuInventory(info=gpu, mig_enabled=True)
                for gpu in self.backend.gpus()
                if gpu.uuid == device.gpu_uuid
            ),
        )
        try:
            located = locating.locate(device.device, node, config=self.publish)
        except locating.DeviceNotFoundError:
            return None
        assert located.profile is not None
        assert located.placement is not None
        return located.profile.profile_id, located.placement


def _held_by_others(
    state: model.Checkpoint, uid: str, matches: Callable[[model.PreparedDevice], bool]
) -> bool:
    """Whether a claim other than `uid` holds a device that `matches`."""
    return any(
        matches(held)
        for other in state.claims.values()
        if other.uid != uid
        for held in other.devices
    )


def _holds_device(state: model.Checkpoint, uid: str, device: model.PreparedDevice) -> bool:
    """Whether a claim other than `uid` holds `device` (admin access shares it with the claim
    that uses it)."""
    return any(other != uid for other in state.holders.get((device.pool, device.device), ()))


def _served_by(daemon: str) -> Callable[[model.PreparedDevice], bool]:
    return lambda held: held.isolation.mps is not None and held.isolation.mps.daemon == daemon
