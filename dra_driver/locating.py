"""From a published device name back to the hardware it stands for (at prepare time).

A claim names devices as the scheduler allocated them (``gpu-3``, ``gpu-0-mig-1g5gb-6``,
``gpu-1-shared``); prepare needs the GPU, the MIG profile and placement, an admin's MIG instance.
A name that this node does not publish (any more) is an error that fails the claim precisely.
"""

from __future__ import annotations

import dataclasses

from api import devicetypes
from dra_driver import hardware, inventory
from dra_driver.slices import building, naming, settings


class DeviceNotFoundError(Exception):
    """The allocated device does not exist on this node."""


@dataclasses.dataclass(frozen=True)
class LocatedDevice:
    name: str
    type: devicetypes.DeviceType
    gpu: hardware.GpuInfo
    profile: hardware.MigProfile | None = None
    placement: hardware.Placement | None = None
    admin_mig: hardware.MigInstance | None = None
    """The admin's MIG instance this (static) MIG device is; None for dynamic ones."""
    fixed_memory: int | None = None
    """Compatibility-mode shares: the memory each share gets."""


def locate(
    name: str, node: inventory.Inventory, *, config: settings.PublishSettings
) -> LocatedDevice:
    parsed = naming.parse(name)
    if parsed is None:
        raise DeviceNotFoundError(f"device {name!r} is not a device of this driver")
    entries = [entry for entry in node.gpus if entry.info.index == parsed.gpu_index]
    if not entries:
        raise DeviceNotFoundError(f"device {name!r}: this node has no GPU {parsed.gpu_index}")
    entry = entries[0]
    gpu = entry.info
    if parsed.kind == "gpu":
        return LocatedDevice(name, devicetypes.DeviceType.GPU, gpu)
    if parsed.kind == "shared":
        return LocatedDevice(name, devicetypes.DeviceType.SHARED, gpu)
    if parsed.kind == "share":
        count = config.shared.compat_shares
        if parsed.share is None or parsed.share >= count:
            raise DeviceNotFoundError(f"device {name!r}: GPU {gpu.index} has {count} shares")
        memory = building.fixed_share_memory(gpu, count)
        return LocatedDevice(name, devicetypes.DeviceType.SHARED, gpu, fixed_memory=memory)
    return _mig(name, entry, parsed)


def _mig(name: str, entry: inventory.GpuInventory, parsed: naming.ParsedName) -> LocatedDevice:
    gpu = entry.info
    profiles = [p for p in gpu.mig_profiles if naming.profile_slug(p.name) == parsed.profile_slug]
    if not profiles:
        raise DeviceNotFoundError(
            f"device {name!r}: GPU {gpu.index} ({gpu.product_name}) has no MIG profile "
            f"{parsed.profile_slug!r}"
        )
    profile = profiles[0]
    placements = [p for p in profile.placements if p.start == parsed.start]
    if not placements:
        raise DeviceNotFoundError(f"device {name!r}: {profile.name} cannot start at {parsed.start}")
    admin = [
        i
        for i in entry.admin_instances
        if i.profile_id == profile.profile_id and i.placement == placements[0]
    ]
    return LocatedDevice(
        name,
        devicetypes.DeviceType.MIG,
        gpu,
        profile=profile,
        placement=placements[0],
        admin_mig=admin[0] if admin else None,
    )
