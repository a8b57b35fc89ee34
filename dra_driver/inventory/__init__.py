"""The node's inventory: its GPUs, their MIG state, and which MIG instances are whose.

An `Inventory` is a snapshot that `discover` reads from a `GpuBackend`; the driver reads a new
one whenever it needs the devices as they are now (each time it builds the node's slices, and for
each claim it prepares), since MIG instances come and go with claims and admins. MIG instances
come in two kinds: those the driver created for claims (``owned``: the checkpoint knows their
UUIDs) are just the current state of a dynamic MIG device; every other instance was made by an
admin and is published as a static MIG device that the driver never touches. Run ``python -m
dra_driver.inventory --gpus fake:8xA100-40GB`` to see what a node would publish.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection

from dra_driver import hardware
from dra_driver.backends import GpuBackend

__all__ = ["GpuInventory", "Inventory", "discover"]


@dataclasses.dataclass(frozen=True)
class GpuInventory:
    """One GPU and the MIG instances on it."""

    info: hardware.GpuInfo
    mig_enabled: bool
    admin_instances: tuple[hardware.MigInstance, ...] = ()
    """MIG instances the driver did not create: published as static devices, never touched."""
    owned_instances: tuple[hardware.MigInstance, ...] = ()
    """MIG instances the driver created for claims."""

    @property
    def partitioned_by_admin(self) -> bool:
        """An admin has carved this GPU: it cannot be offered whole or shared."""
        return bool(self.admin_instances)

    def free_placements(self) -> list[tuple[hardware.MigProfile, hardware.Placement]]:
        """Profile × placement pairs that can still be created beside the admin's instances.

        A placement must not overlap an admin's instance, and its profile must be below its
        instance cap counting the admin's instances (a second ``+me`` is never possible).
        """
        taken = [instance.placement for instance in self.admin_instances]
        counts = collections.Counter(instance.profile_id for instance in self.admin_instances)
        return [
            (profile, placement)
            for profile in self.info.mig_profiles
            if counts[profile.profile_id] < profile.max_instances
            for placement in profile.placements
            if not hardware.overlapping(placement, taken)
        ]


@dataclasses.dataclass(frozen=True)
class Inventory:
    node_name: str
    gpus: tuple[GpuInventory, ...]


def discover(
    backend: GpuBackend, *, node_name: str, owned_mig_uuids: Collection[str] = ()
) -> Inventory:
    """Read every GPU and its MIG state from `backend`."""
    entries = []
    for info in backend.gpus():
        status = backend.status(info.uuid)
        owned = tuple(i for i in status.mig_instances if i.uuid in owned_mig_uuids)
        admin = tuple(i for i in status.mig_instances if i.uuid not in owned_mig_uuids)
        entries.append(
            GpuInventory(
                info=info,
                mig_enabled=status.mig_enabled,
                admin_instances=admin,
                owned_instances=owned,
            )
        )
    return Inventory(node_name=node_name, gpus=tuple(entries))
