"""Pack a node's devices and counter sets into ResourceSlices within the API's limits.

Rules (resource.k8s.io/v1, 1.35+): a slice holds either devices or counter sets, never both; at
most 8 counter sets per slice; at most 128 devices per slice, 64 if any of them consumes counters,
has taints or list attributes. Counter sets go first, in slices of their own; then one slice per
GPU (its devices, split further only if they pass the limit), so a change to one GPU rewrites one
slice. The allocator tries slices in name order and devices top to bottom, so GPU 0 fills first.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from dra_driver.slices import building, wire

MAX_DEVICES = 128
MAX_RESTRICTED_DEVICES = 64
MAX_COUNTER_SETS = 8


@dataclasses.dataclass(frozen=True)
class SliceContent:
    """What one ResourceSlice carries, besides driver, pool and node."""

    devices: tuple[wire.Device, ...] = ()
    shared_counters: tuple[wire.CounterSet, ...] = ()


def split(groups: list[building.GpuDevices]) -> list[SliceContent]:
    sets = [group.counter_set for group in groups if group.counter_set is not None]
    contents = [
        SliceContent(shared_counters=tuple(chunk)) for chunk in _chunks(sets, MAX_COUNTER_SETS)
    ]
    for group in groups:
        limit = MAX_RESTRICTED_DEVICES if any(map(restricted, group.devices)) else MAX_DEVICES
        contents += [SliceContent(devices=tuple(chunk)) for chunk in _chunks(group.devices, limit)]
    return contents


def restricted(device: wire.Device) -> bool:
    """Devices that lower a slice's device limit to 64."""
    has_list = any(
        key in value for value in device.get("attributes", {}).values() for key in _LIST_KINDS
    )
    return bool(device.get("consumesCounters") or device.get("taints") or has_list)


_LIST_KINDS = ("ints", "bools", "strings", "versions")


def specs(
    contents: list[SliceContent], *, driver: str, node_name: str, pool: str, generation: int
) -> list[wire.SliceSpec]:
    """The full slice specs of one pool generation, in order."""
    result: list[wire.SliceSpec] = []
    for content in contents:
        spec: wire.SliceSpec = {
            "driver": driver,
            "pool": {"name": pool, "generation": generation, "resourceSliceCount": len(contents)},
            "nodeName": node_name,
        }
        if content.shared_counters:
            spec["sharedCounters"] = list(content.shared_counters)
        else:
            spec["devices"] = list(content.devices)
        result.append(spec)
    return result


_T = TypeVar("_T")


def _chunks(items: list[_T], size: int) -> list[list[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
