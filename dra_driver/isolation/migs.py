"""Dynamic MIG: create the GPU and compute instance of an allocated MIG device, destroy it after.

A MIG device published as ``gpu-<i>-mig-<profile>-<start>`` is created at exactly that placement,
so what the scheduler counted is what the hardware holds. An admin's instances (static devices)
are used as they are and never destroyed. A whole GPU needs MIG mode off; MIG mode is turned on
when the first instance is created and left on (toggling it may need a GPU reset).
"""

from __future__ import annotations

import structlog

from dra_driver import hardware, locating
from dra_driver.backends import GpuBackend, errors

log = structlog.get_logger(__name__)


def ensure(backend: GpuBackend, device: locating.LocatedDevice) -> tuple[str, int | None]:
    """The MIG device's UUID, creating it if needed; also the GPU-instance ID if we created it."""
    if device.admin_mig is not None:
        return device.admin_mig.uuid, None
    assert device.profile is not None
    assert device.placement is not None
    gpu = device.gpu.uuid
    status = backend.status(gpu)
    for instance in status.mig_instances:  # left by an interrupted prepare of this very claim
        if (
            instance.profile_id == device.profile.profile_id
            and instance.placement == device.placement
        ):
            return instance.uuid, instance.gpu_instance_id
    if not status.mig_enabled:
        backend.set_mig_mode(gpu, enabled=True)
    created = backend.create_mig_instance(
        gpu, profile_id=device.profile.profile_id, placement=device.placement
    )
    log.info("mig.created", gpu=gpu, device=device.name, mig=created.uuid)
    return created.uuid, created.gpu_instance_id


def destroy(backend: GpuBackend, gpu_uuid: str, *, gpu_instance_id: int) -> None:
    """Destroy an instance we created; one that is already gone counts as destroyed."""
    try:
        backend.destroy_mig_instance(gpu_uuid, gpu_instance_id=gpu_instance_id)
    except errors.InstanceNotFoundError:
        log.info("mig.already_gone", gpu=gpu_uuid, gpu_instance_id=gpu_instance_id)
        return
    log.info("mig.destroyed", gpu=gpu_uuid, gpu_instance_id=gpu_instance_id)


def destroy_at(
    backend: GpuBackend, gpu_uuid: str, *, profile_id: int, placement: hardware.Placement
) -> None:
    """Destroy the instance of `profile_id` at `placement`, if any (rollback after a crash)."""
    for instance in backend.status(gpu_uuid).mig_instances:
        if instance.profile_id == profile_id and instance.placement == placement:
            destroy(backend, gpu_uuid, gpu_instance_id=instance.gpu_instance_id)


def whole_gpu(backend: GpuBackend, gpu: hardware.GpuInfo) -> None:
    """Make a GPU usable whole: MIG mode off (refused while instances exist)."""
    if not gpu.mig_capable:
        return
    status = backend.status(gpu.uuid)
    if status.mig_enabled:
        backend.set_mig_mode(gpu.uuid, enabled=False)
