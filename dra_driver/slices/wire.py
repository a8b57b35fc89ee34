"""`resource.k8s.io/v1` ResourceSlice shapes as plain JSON (TypedDicts), the way the API server sees them.

We build plain dicts instead of client models: the official client's models drop fields they do
not know, and the ResourceSlice controller compares what it sent with what the server returns.
"""

from __future__ import annotations

from typing import TypedDict

# Keys such as "int" and "bool" are Python keywords or builtins, hence the functional syntax.
DeviceAttribute = TypedDict(  # noqa: UP013
    "DeviceAttribute", {"int": int, "bool": bool, "string": str, "version": str}, total=False
)


class RequestPolicyRange(TypedDict, total=False):
    min: str
    max: str
    step: str


class RequestPolicy(TypedDict, total=False):
    default: str
    validRange: RequestPolicyRange
    validValues: list[str]


class _CapacityRequired(TypedDict):
    value: str


class DeviceCapacity(_CapacityRequired, total=False):
    requestPolicy: RequestPolicy


class Counter(TypedDict):
    value: str


class CounterSet(TypedDict):
    name: str
    counters: dict[str, Counter]


class CounterConsumption(TypedDict):
    counterSet: str
    counters: dict[str, Counter]


class DeviceTaint(TypedDict, total=False):
    key: str
    value: str
    effect: str
    timeAdded: str


class _DeviceRequired(TypedDict):
    name: str


class Device(_DeviceRequired, total=False):
    attributes: dict[str, DeviceAttribute]
    capacity: dict[str, DeviceCapacity]
    consumesCounters: list[CounterConsumption]
    allowMultipleAllocations: bool
    taints: list[DeviceTaint]


class ResourcePool(TypedDict):
    name: str
    generation: int
    resourceSliceCount: int


class _SliceSpecRequired(TypedDict):
    driver: str
    pool: ResourcePool


class SliceSpec(_SliceSpecRequired, total=False):
    nodeName: str
    devices: list[Device]
    sharedCounters: list[CounterSet]
