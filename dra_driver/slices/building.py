"""The device builder: what a node publishes, per GPU and per mode (pure computation).

Full mode, per GPU ``i`` (unless an admin has carved it with MIG instances of their own):
``gpu-i`` (the whole GPU), ``gpu-i-shared`` (consumable ``memory`` and ``cores``, many claims at
once) and one ``gpu-i-mig-<profile>-<start>`` per MIG profile × placement, all tied together by the
GPU's counter set (see `counters`). An admin's MIG instances are published as static MIG devices
with their ``uuid``, next to the dynamic placements that do not overlap them.

Compatibility mode: no counters. A GPU in MIG mode offers its existing instances; any other GPU
offers either itself whole or, if the admin asked for shares, ``gpu-i-share-<k>`` devices, never
both (without counters nothing else would keep them apart).

Devices of a GPU are listed in the order the allocator should try them (it takes the first fit):
for MIG, small profiles before big ones (a claim selecting by capacity gets the best fit) and
higher starts before lower ones, which leaves the low slices free for the big profiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from api import devicetypes, quantities
from dra_driver import hardware, inventory
from dra_driver.slices import attributes, counters, naming, settings, wire

CORES = 100
"""The ``cores`` capacity of a shared device: percent of the GPU's SMs."""


@dataclasses.dataclass(frozen=True)
class GpuDevices:
    """Everything one GPU contributes to the node's pool."""

    index: int
    counter_set: wire.CounterSet | None
    devices: list[wire.Device]


TAINT_DOMAIN = "gpu.dra.dev"


def build(
    node: inventory.Inventory,
    config: settings.PublishSettings,
    unhealthy: Mapping[str, hardware.HealthEvent] | None = None,
) -> list[GpuDevices]:
    """The devices of every GPU; those of an unhealthy GPU carry a ``NoSchedule`` taint.

    An unhealthy GPU's devices are tainted, never removed: while one of them is allocated, the
    scheduler must keep seeing it and its counter costs.
    """
    build_one = _full_mode if config.mode is settings.Mode.FULL else _compat_mode
    groups = [build_one(entry, config) for entry in node.gpus]
    for group, entry in zip(groups, node.gpus, strict=True):
        event = (unhealthy or {}).get(entry.info.uuid)
        if event is not None:
            for device in group.devices:
                device["taints"] = [taint(event)]
    return groups


def taint(event: hardware.HealthEvent) -> wire.DeviceTaint:
    if event.xid == 0:
        return {"key": f"{TAINT_DOMAIN}/gpu-lost", "effect": "NoSchedule"}
    return {"key": f"{TAINT_DOMAIN}/xid", "value": str(event.xid), "effect": "NoSchedule"}


def _full_mode(entry: inventory.GpuInventory, config: settings.PublishSettings) -> GpuDevices:
    gpu = entry.info
    devices: list[wire.Device] = []
    if not entry.partitioned_by_admin:
        devices.append(_with_cost(_whole_gpu(gpu), gpu, counters.whole_gpu_cost(gpu)))
        if config.shared.enabled:
            shared = _shared(gpu, config.shared)
            devices.append(_with_cost(shared, gpu, counters.whole_gpu_cost(gpu)))
    owned = {(i.profile_id, i.placement) for i in entry.owned_instances}
    slots = [
        (profile, placement)
        for profile, placement in entry.free_placements()
        if config.dynamic_mig or (profile.profile_id, placement) in owned
    ]
    mig: list[tuple[hardware.MigProfile, hardware.Placement, wire.Device]] = [
        (profile, placement, _mig(gpu, profile, placement, uuid=None))
        for profile, placement in slots
    ]
    for instance in entry.admin_instances:
        profile = gpu.mig_profile(instance.profile_id)
        mig.append(
            (profile, instance.placement, _mig(gpu, profile, instance.placement, instance.uuid))
        )
    mig.sort(key=lambda item: _preference(*item[:2]))
    devices += [
        _with_cost(device, gpu, counters.mig_cost(gpu, profile, placement))
        for profile, placement, device in mig
    ]
    counter_set: wire.CounterSet = {
        "name": naming.counter_set(gpu.index),
        "counters": _amounts(counters.totals(gpu)),
    }
    return GpuDevices(index=gpu.index, counter_set=counter_set, devices=devices)


def _preference(profile: hardware.MigProfile, placement: hardware.Placement) -> tuple[int, ...]:
    """Smallest first (a capacity selector gets the best fit), then higher starts first."""
    extras = profile.decoders + profile.jpeg_engines + profile.ofa_engines
    return (placement.size, profile.compute_slices, extras, -placement.start)


def _compat_mode(entry: inventory.GpuInventory, config: settings.PublishSettings) -> GpuDevices:
    gpu = entry.info
    devices: list[wire.Device]
    if entry.mig_enabled:
        instances = sorted(
            (*entry.admin_instances, *entry.owned_instances), key=lambda i: i.placement
        )
        devices = [_mig(gpu, gpu.mig_profile(i.profile_id), i.placement, i.uuid) for i in instances]
    elif config.shared.compat_shares > 0:
        count = config.shared.compat_shares
        devices = [_fixed_share(gpu, k, count, config.shared) for k in range(count)]
    else:
        devices = [_whole_gpu(gpu)]
    return GpuDevices(index=gpu.index, counter_set=None, devices=devices)


def _whole_gpu(gpu: hardware.GpuInfo) -> wire.Device:
    return {
        "name": naming.gpu(gpu.index),
        "attributes": {
            "type": attributes.string(devicetypes.DeviceType.GPU.value),
            "uuid": attributes.string(gpu.uuid),
            "index": attributes.integer(gpu.index),
            "migCapable": attributes.boolean(gpu.mig_capable),
            **attributes.identity(gpu),
        },
        "capacity": {
            "memory": {"value": quantities.format_bytes(gpu.memory_bytes)},
            "multiprocessors": {"value": str(gpu.multiprocessors)},
        },
    }


def _mig(
    gpu: hardware.GpuInfo,
    profile: hardware.MigProfile,
    placement: hardware.Placement,
    uuid: str | None,
) -> wire.Device:
    device_attributes = {
        "type": attributes.string(devicetypes.DeviceType.MIG.value),
        "profile": attributes.string(profile.name),
        "profileId": attributes.integer(profile.profile_id),
        "parentUUID": attributes.string(gpu.uuid),
        "parentIndex": attributes.integer(gpu.index),
        "placementStart": attributes.integer(placement.start),
        "placementSize": attributes.integer(placement.size),
        **attributes.identity(gpu),
    }
    if uuid is not None:
        device_attributes["uuid"] = attributes.string(uuid)
    amounts = {
        "multiprocessors": profile.multiprocessors,
        "copyEngines": profile.copy_engines,
        "decoders": profile.decoders,
        "encoders": profile.encoders,
        "jpegEngines": profile.jpeg_engines,
        "ofaEngines": profile.ofa_engines,
    }
    capacity: dict[str, wire.DeviceCapacity] = {
        "memory": {"value": quantities.format_bytes(profile.memory_bytes)},
        **{name: {"value": str(amount)} for name, amount in amounts.items()},
    }
    name = naming.mig(gpu.index, profile.name, placement.start)
    return {"name": name, "attributes": device_attributes, "capacity": capacity}


def _shared(gpu: hardware.GpuInfo, shared: settings.SharedSettings) -> wire.Device:
    # Every capacity of a multi-allocatable device is charged on every share (its default, or
    # the full value without a policy), so the shared device has exactly these two, both with
    # policies, and the memory default is never zero.
    step = quantities.format_bytes(shared.memory_step)
    return {
        "name": naming.shared(gpu.index),
        "allowMultipleAllocations": True,
        "attributes": {
            "type": attributes.string(devicetypes.DeviceType.SHARED.value),
            "uuid": attributes.string(gpu.uuid),
            "index": attributes.integer(gpu.index),
            "sharingStrategy": attributes.string(shared.strategy_for(gpu).value),
            **attributes.identity(gpu),
        },
        "capacity": {
            "memory": {
                "value": quantities.format_bytes(gpu.memory_bytes),
                "requestPolicy": {
                    "default": quantities.format_bytes(shared.memory_default),
                    "validRange": {"min": step, "step": step},
                },
            },
            "cores": {
                "value": str(CORES),
                "requestPolicy": {
                    "default": str(shared.cores_default),
                    "validRange": {"min": "0", "step": "1"},
                },
            },
        },
    }


def _fixed_share(
    gpu: hardware.GpuInfo, k: int, count: int, shared: settings.SharedSettings
) -> wire.Device:
    memory = fixed_share_memory(gpu, count)
    return {
        "name": naming.share(gpu.index, k),
        "attributes": {
            "type": attributes.string(devicetypes.DeviceType.SHARED.value),
            "uuid": attributes.string(gpu.uuid),
            "index": attributes.integer(gpu.index),
            "shareIndex": attributes.integer(k),
            "shareCount": attributes.integer(count),
            "sharingStrategy": attributes.string(shared.strategy_for(gpu).value),
            **attributes.identity(gpu),
        },
        "capacity": {
            "memory": {"value": quantities.format_bytes(memory)},
            "cores": {"value": str(CORES // count)},
        },
    }


def fixed_share_memory(gpu: hardware.GpuInfo, count: int) -> int:
    """The memory of each of `count` fixed shares of `gpu` (compatibility mode), whole MiB."""
    return gpu.memory_bytes // count // hardware.MIB * hardware.MIB


def _with_cost(device: wire.Device, gpu: hardware.GpuInfo, cost: counters.Amounts) -> wire.Device:
    device["consumesCounters"] = [
        {"counterSet": naming.counter_set(gpu.index), "counters": _amounts(cost)}
    ]
    return device


def _amounts(amounts: counters.Amounts) -> dict[str, wire.Counter]:
    return {
        name: {"value": quantities.format_bytes(v) if name == "memory" else str(v)}
        for name, v in amounts.items()
    }
