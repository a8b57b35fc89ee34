"""Builders of inventories for the slice tests: fake GPUs, optionally with existing MIG instances."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from api import quantities
from dra_driver import hardware, inventory
from dra_driver.backends.fake import specs
from dra_driver.slices import wire


def node(
    spec: str,
    *,
    admin: Sequence[tuple[int, int, int]] = (),
    owned: Sequence[tuple[int, int, int]] = (),
    mig_enabled: Sequence[int] = (),
) -> inventory.Inventory:
    """An inventory of fake GPUs; `admin`/`owned` list (gpu index, profile ID, start) instances."""
    infos = specs.layout(specs.parse(spec), node_name="node-0")
    entries = []
    for info in infos:
        made = {
            kind: tuple(
                _instance(info, profile_id, start, serial=n)
                for n, (index, profile_id, start) in enumerate(items)
                if index == info.index
            )
            for kind, items in (("admin", admin), ("owned", owned))
        }
        entries.append(
            inventory.GpuInventory(
                info=info,
                mig_enabled=info.index in mig_enabled or bool(made["admin"] or made["owned"]),
                admin_instances=made["admin"],
                owned_instances=made["owned"],
            )
        )
    return inventory.Inventory(node_name="node-0", gpus=tuple(entries))


def _instance(
    info: hardware.GpuInfo, profile_id: int, start: int, *, serial: int
) -> hardware.MigInstance:
    profile = info.mig_profile(profile_id)
    placement = next(p for p in profile.placements if p.start == start)
    return hardware.MigInstance(
        parent_uuid=info.uuid,
        profile_id=profile_id,
        profile_name=profile.name,
        placement=placement,
        uuid=specs.mig_uuid(info.uuid, serial + 1000 * start + profile_id),
        gpu_instance_id=serial + 1,
        compute_instance_id=0,
    )


def attribute(device: wire.Device, name: str) -> object:
    value = device.get("attributes", {})[name]
    return next(iter(value.values()))


def consumed(devices: Sequence[wire.Device]) -> dict[str, Fraction]:
    """What allocating all of `devices` at once charges, each device once."""
    total: dict[str, Fraction] = {}
    for device in devices:
        for entry in device.get("consumesCounters", []):
            for name, counter in entry["counters"].items():
                total[name] = total.get(name, Fraction(0)) + quantities.parse(counter["value"])
    return total


def fits(devices: Sequence[wire.Device], counter_set: wire.CounterSet) -> bool:
    """Whether the scheduler's counter arithmetic allows all of `devices` together."""
    totals = {name: quantities.parse(c["value"]) for name, c in counter_set["counters"].items()}
    return all(amount <= totals[name] for name, amount in consumed(devices).items())
