"""Dynamic MIG: create the GPU and compute instance of an allocated MIG device, destroy it after.

A MIG device published as ``gpu-<i>-mig-<profile>-<start>`` is created at exactly that placement,
so what the scheduler counted is what the hardware holds. An admin's instances (static devices)
are used as they are and never destroyed. A whole GPU needs MIG mode off; MIG mode is turned on
when the first instance is created and left on (toggling it may need a GPU reset).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, TypedDict

import structlog

from dra_driver import atomicfiles, hardware, locating
from dra_driver.backends import GpuBackend, errors

log = structlog.get_logger(__name__)


class _Entry(TypedDict):
    gpu: str
    gpuInstanceId: int
    uuid: str


class Ledger:
    """Every MIG instance this driver created and has not destroyed yet (``mig-ledger.json``).

    The checkpoint says which claim holds which instance; the ledger says which instances are
    ours at all. An instance in the ledger that no checkpoint entry holds is an orphan (its claim
    was lost, e.g. with a corrupt checkpoint) and is destroyed at start-up; an instance in
    neither is an admin's and is never touched. Callers hold the node's serialize lock.
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def entries(self) -> list[_Entry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except ValueError:
            log.error("mig_ledger.corrupt", path=str(self.path))
            return []
        items: list[Any] = raw.get("instances", []) if isinstance(raw, dict) else []
        return [
            _Entry(gpu=str(e["gpu"]), gpuInstanceId=int(e["gpuInstanceId"]), uuid=str(e["uuid"]))
            for e in items
            if isinstance(e, dict) and {"gpu", "gpuInstanceId", "uuid"} <= e.keys()
        ]

    def add(self, gpu_uuid: str, instance: hardware.MigInstance) -> None:
        entry: _Entry = {
            "gpu": gpu_uuid,
            "gpuInstanceId": instance.gpu_instance_id,
            "uuid": instance.uuid,
        }
        self._write([*self.entries(), entry])

    def remove(self, gpu_uuid: str, gpu_instance_id: int) -> None:
        kept = [
            e
            for e in self.entries()
            if not (e["gpu"] == gpu_uuid and e["gpuInstanceId"] == gpu_instance_id)
        ]
        self._write(kept)

    def _write(self, entries: list[_Entry]) -> None:
        # Not fsynced: MIG instances do not outlive a reboot (a GPU reset destroys them), so a
        # ledger that lost its last change in a power loss names only instances that are gone.
        data = json.dumps({"instances": entries}).encode()
        atomicfiles.write_bytes(self.path, data, mode=0o600, durable=False)


def ensure(
    backend: GpuBackend, device: locating.LocatedDevice, ledger: Ledger
) -> hardware.MigInstance:
    """The MIG instance of `device`, creating it if needed (an admin's is returned as it is)."""
    if device.admin_mig is not None:
        return device.admin_mig
    assert device.profile is not None
    assert device.placement is not None
    gpu = device.gpu.uuid
    status = backend.status(gpu)
    for instance in status.mig_instances:  # left by an interrupted prepare of this very claim
        if (
            instance.profile_id == device.profile.profile_id
            and instance.placement == device.placement
        ):
            return instance
    if not status.mig_enabled:
        backend.set_mig_mode(gpu, enabled=True)
    created = backend.create_mig_instance(
        gpu, profile_id=device.profile.profile_id, placement=device.placement
    )
    ledger.add(gpu, created)
    log.info("mig.created", gpu=gpu, device=device.name, mig=created.uuid)
    return created


def destroy(backend: GpuBackend, gpu_uuid: str, *, gpu_instance_id: int, ledger: Ledger) -> None:
    """Destroy an instance we created; one that is already gone counts as destroyed."""
    try:
        backend.destroy_mig_instance(gpu_uuid, gpu_instance_id=gpu_instance_id)
    except errors.InstanceNotFoundError:
        log.info("mig.already_gone", gpu=gpu_uuid, gpu_instance_id=gpu_instance_id)
    else:
        log.info("mig.destroyed", gpu=gpu_uuid, gpu_instance_id=gpu_instance_id)
    ledger.remove(gpu_uuid, gpu_instance_id)


def destroy_at(
    backend: GpuBackend,
    gpu_uuid: str,
    *,
    profile_id: int,
    placement: hardware.Placement,
    ledger: Ledger,
) -> None:
    """Destroy the instance of `profile_id` at `placement`, if any (rollback after a crash)."""
    for instance in backend.status(gpu_uuid).mig_instances:
        if instance.profile_id == profile_id and instance.placement == placement:
            destroy(backend, gpu_uuid, gpu_instance_id=instance.gpu_instance_id, ledger=ledger)


def destroy_orphans(backend: GpuBackend, ledger: Ledger, *, held: set[str]) -> list[str]:
    """Destroy the instances in `ledger` that no prepared claim holds; return their UUIDs."""
    destroyed = []
    for entry in ledger.entries():
        if entry["uuid"] in held:
            continue
        live = {i.uuid for i in backend.status(entry["gpu"]).mig_instances}
        if entry["uuid"] in live:
            destroy(backend, entry["gpu"], gpu_instance_id=entry["gpuInstanceId"], ledger=ledger)
            log.warning("mig.orphan_destroyed", gpu=entry["gpu"], mig=entry["uuid"])
            destroyed.append(entry["uuid"])
        else:
            ledger.remove(entry["gpu"], entry["gpuInstanceId"])
    return destroyed


def whole_gpu(backend: GpuBackend, gpu: hardware.GpuInfo) -> None:
    """Make a GPU usable whole: MIG mode off (refused while instances exist)."""
    if not gpu.mig_capable:
        return
    status = backend.status(gpu.uuid)
    if status.mig_enabled:
        backend.set_mig_mode(gpu.uuid, enabled=False)
