"""A node's published pool as the scheduler sees it: devices, counter sets, and what is left.

Only the slices of a pool's newest generation count (the scheduler ignores older ones while a
driver replaces them). Counter arithmetic follows the allocator of Kubernetes 1.37: a device's
``consumesCounters`` are charged once per allocated device, and once for a multi-allocatable
device while any share of it exists; a device fits if every counter it consumes has that much
left. Nothing here reads the GPUs' MIG tables: placements, slices and costs all come from what the
node published, so the map is right for any GPU the driver serves.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from api import errors as api_errors
from api import quantities
from controller import rest
from dra_driver.slices import naming

Amounts = dict[str, int]


@dataclasses.dataclass(frozen=True)
class Device:
    name: str
    attributes: Mapping[str, Any]
    """Attribute name → its value (``int``, ``bool`` or ``str``; versions as strings)."""
    capacity: Mapping[str, int]
    costs: Mapping[str, Amounts]
    """Counter set → the amounts this device consumes from it."""
    multi: bool
    """``allowMultipleAllocations``: shared by many claims at once."""
    taints: tuple[Mapping[str, str], ...]

    def attribute(self, name: str) -> Any:
        return self.attributes.get(name)

    @property
    def gpu_index(self) -> int | None:
        for key in ("index", "parentIndex"):
            value = self.attributes.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        parsed = naming.parse(self.name)
        return parsed.gpu_index if parsed else None


@dataclasses.dataclass(frozen=True)
class Pool:
    name: str
    node: str
    devices: tuple[Device, ...]
    counters: Mapping[str, Amounts]
    """Counter set → counter → total."""


def current(slices: Iterable[rest.Obj]) -> list[Pool]:
    """The pools in `slices` (one driver's), each from its newest generation, sorted by node."""
    newest: dict[str, list[rest.Obj]] = collections.defaultdict(list)
    generation: dict[str, int] = {}
    for item in slices:
        spec = item.get("spec") or {}
        pool = spec.get("pool") or {}
        name, gen = pool.get("name", ""), int(pool.get("generation") or 0)
        if gen > generation.get(name, -1):
            generation[name] = gen
            newest[name] = []
        if gen == generation[name]:
            newest[name].append(spec)
    return sorted((_pool(name, specs) for name, specs in newest.items()), key=lambda p: p.node)


def _pool(name: str, specs: list[rest.Obj]) -> Pool:
    devices, counters = [], {}
    node = next((s["nodeName"] for s in specs if s.get("nodeName")), name)
    for spec in specs:
        devices += [_device(d) for d in spec.get("devices") or []]
        for counter_set in spec.get("sharedCounters") or []:
            counters[counter_set["name"]] = _amounts(counter_set.get("counters") or {})
    return Pool(name=name, node=node, devices=tuple(devices), counters=counters)


def _device(body: rest.Obj) -> Device:
    attributes = {  # {"int": 3} → 3
        name: next(iter(value.values()), None) if isinstance(value, dict) else None
        for name, value in (body.get("attributes") or {}).items()
    }
    capacity = {
        name: quantity((value or {}).get("value", "0"))
        for name, value in (body.get("capacity") or {}).items()
    }
    costs = {
        use["counterSet"]: _amounts(use.get("counters") or {})
        for use in body.get("consumesCounters") or []
    }
    return Device(
        name=body["name"],
        attributes=attributes,
        capacity=capacity,
        costs=costs,
        multi=bool(body.get("allowMultipleAllocations")),
        taints=tuple(body.get("taints") or ()),
    )


def _amounts(counters: Mapping[str, Any]) -> Amounts:
    return {name: quantity((c or {}).get("value", "0")) for name, c in counters.items()}


def quantity(text: object) -> int:
    """A quantity as a whole number (rounded up, as the allocator rounds); 0 if not one."""
    try:
        value = quantities.parse(str(text))
    except api_errors.ConfigError:
        return 0
    return int(-(-value // Fraction(1)))


def consumed(pool: Pool, allocated: Iterable[str]) -> dict[str, Amounts]:
    """What the `allocated` devices of `pool` consume, per counter set (each device once)."""
    by_name = {d.name: d for d in pool.devices}
    used: dict[str, Amounts] = collections.defaultdict(lambda: collections.defaultdict(int))
    for name in set(allocated):
        device = by_name.get(name)
        for counter_set, amounts in (device.costs if device else {}).items():
            for counter, amount in amounts.items():
                used[counter_set][counter] += amount
    return used


def fits(pool: Pool, device: Device, used: Mapping[str, Mapping[str, int]]) -> bool:
    """True if `device`'s counter costs fit what is left of its counter sets."""
    for counter_set, amounts in device.costs.items():
        totals = pool.counters.get(counter_set, {})
        taken = used.get(counter_set, {})
        for counter, amount in amounts.items():
            if taken.get(counter, 0) + amount > totals.get(counter, 0):
                return False
    return True
