"""The node's inventory: its GPUs, their MIG state, and which MIG instances are whose.

An `Inventory` is a snapshot that `discover` reads from a `GpuBackend`; the driver reads a new
one whenever it needs the devices as they are now (each time it builds the node's slices), since
MIG instances come and go with claims and admins. The prepare flow asks a `Cache` for each claim:
it reads the GPUs again only when the backend's `mig_version` changed (the fake backend's state
file was written, by this process creating a MIG instance or by anyone else), and always with a
backend that has no such version (NVML). MIG instances
come in two kinds: those the driver created for claims (``owned``: the checkpoint knows their
UUIDs) are just the current state of a dynamic MIG device; every other instance was made by an
admin and is published as a static MIG device that the driver never touches. Run ``python -m
dra_driver.inventory --gpus fake:8xA100-40GB`` to see what a node would publish.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection, Hashable, Sequence

from dra_driver import hardware
from dra_driver.backends import GpuBackend

__all__ = ["Cache", "GpuInventory", "Inventory", "discover"]


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
    statuses = [backend.status(info.uuid) for info in backend.gpus()]
    return _inventory(node_name, backend.gpus(), statuses, owned_mig_uuids)


class Cache:
    """`discover`, read again only when the backend's `mig_version` changed (or it has none)."""

    def __init__(self, backend: GpuBackend, *, node_name: str) -> None:
        self.backend = backend
        self.node_name = node_name
        self._version: Hashable | None = None
        self._statuses: list[hardware.GpuStatus] | None = None
        self._built: dict[frozenset[str], Inventory] = {}

    def current(self, *, owned_mig_uuids: Collection[str] = ()) -> Inventory:
        """The inventory as `discover` would read it now."""
        version = self.backend.mig_version()
        if version is None or version != self._version or self._statuses is None:
            # The version first: a change while reading makes the next call read again.
            self._version, self._built = version, {}
            self._statuses = [self.backend.status(info.uuid) for info in self.backend.gpus()]
        live = {i.uuid for status in self._statuses for i in status.mig_instances}
        owned = frozenset(live.intersection(owned_mig_uuids))
        node = self._built.get(owned)
        if node is None:
            node = _inventory(self.node_name, self.backend.gpus(), self._statuses, owned)
            self._built[owned] = node
        return node


def _inventory(
    node_name: str,
    gpus: Sequence[hardware.GpuInfo],
    statuses: Sequence[hardware.GpuStatus],
    owned_mig_uuids: Collection[str],
) -> Inventory:
    entries = []
    for info, status in zip(gpus, statuses, strict=True):
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
