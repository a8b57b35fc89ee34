"""The `resource.k8s.io/v1` limits a published pool must respect, checked before anything is sent.

`violations(specs)` lists every broken rule of a pool (its slices together) as
``slices[1].devices[3].attributes: 33 attributes and capacities, at most 32``. Sources: the
limits of ``k8s.io/api/resource/v1`` (``types.go``: ``ResourceSliceMaxDevices`` and its
neighbours, with the API server's validation of ResourceSlices) and the structured allocator of
``k8s.io/dynamic-resource-allocation``. Pool-level rules that the API server does not check but
the scheduler does (unknown counter sets or counters make the whole pool unusable) are checked
too, as is that every device fits in its counter set at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction

from api import errors as api_errors
from api import quantities
from dra_driver.slices import splitting, wire

MAX_ATTRIBUTES_AND_CAPACITIES = 32
MAX_STRING = 64
MAX_COUNTERS_PER_SET = 32
MAX_CONSUMES_COUNTERS = 2
MAX_TAINTS = 16

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def violations(specs: list[wire.SliceSpec]) -> list[str]:
    """Every rule that the slices of one pool break (empty: all good)."""
    return list(_pool(specs))


def dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS_LABEL.match(name))


def dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and all(dns_label(part) for part in name.split("."))


def qualified_name(name: str) -> bool:
    domain, _, identifier = name.rpartition("/")
    if domain and (len(domain) > 63 or not dns_subdomain(domain)):
        return False
    return len(identifier) <= 32 and bool(_C_IDENTIFIER.match(identifier))


def _pool(specs: list[wire.SliceSpec]) -> Iterator[str]:
    sets: dict[str, dict[str, Fraction]] = {}
    devices: dict[str, str] = {}
    for i, spec in enumerate(specs):
        where = f"slices[{i}]"
        yield from _slice(spec, where, count=len(specs), generation=specs[0]["pool"]["generation"])
        for j, counter_set in enumerate(spec.get("sharedCounters", [])):
            if counter_set["name"] in sets:
                yield f"{where}.sharedCounters[{j}].name: duplicate counter set in the pool"
            sets[counter_set["name"]] = {
                name: _quantity(counter["value"]) or Fraction(0)
                for name, counter in counter_set["counters"].items()
            }
        for j, device in enumerate(spec.get("devices", [])):
            if device["name"] in devices:
                yield f"{where}.devices[{j}].name: {device['name']!r} also in {devices[device['name']]}"
            devices[device["name"]] = f"{where}.devices[{j}]"
    for i, spec in enumerate(specs):
        for j, device in enumerate(spec.get("devices", [])):
            yield from _consumption(device, f"slices[{i}].devices[{j}]", sets)


def _slice(spec: wire.SliceSpec, where: str, *, count: int, generation: int) -> Iterator[str]:
    if not dns_subdomain(spec["driver"]) or len(spec["driver"]) > 63:
        yield f"{where}.driver: {spec['driver']!r} is not a DNS subdomain of at most 63 characters"
    pool = spec["pool"]
    if len(pool["name"]) > 253 or not all(map(dns_subdomain, pool["name"].split("/"))):
        yield f"{where}.pool.name: {pool['name']!r} is not DNS subdomains separated by '/'"
    if pool["resourceSliceCount"] != count:
        yield f"{where}.pool.resourceSliceCount: {pool['resourceSliceCount']}, pool has {count}"
    if pool["generation"] != generation:
        yield f"{where}.pool.generation: {pool['generation']}, other slices have {generation}"
    selections = [key for key in ("nodeName", "nodeSelector", "allNodes") if key in spec]
    if len(selections) != 1:
        yield f"{where}: exactly one node selection needed, got {selections}"
    devices, sets = spec.get("devices", []), spec.get("sharedCounters", [])
    if bool(devices) == bool(sets):
        yield f"{where}: must hold either devices or sharedCounters"
    limit = (
        splitting.MAX_RESTRICTED_DEVICES
        if any(map(splitting.restricted, devices))
        else splitting.MAX_DEVICES
    )
    if len(devices) > limit:
        yield f"{where}.devices: {len(devices)} devices, at most {limit}"
    if len(sets) > splitting.MAX_COUNTER_SETS:
        yield f"{where}.sharedCounters: {len(sets)} sets, at most {splitting.MAX_COUNTER_SETS}"
    for j, counter_set in enumerate(sets):
        yield from _counter_set(counter_set, f"{where}.sharedCounters[{j}]")
    for j, device in enumerate(devices):
        yield from _device(device, f"{where}.devices[{j}]")


def _counter_set(counter_set: wire.CounterSet, where: str) -> Iterator[str]:
    if not dns_label(counter_set["name"]):
        yield f"{where}.name: {counter_set['name']!r} is not a DNS label"
    if len(counter_set["counters"]) > MAX_COUNTERS_PER_SET:
        yield f"{where}.counters: {len(counter_set['counters'])}, at most {MAX_COUNTERS_PER_SET}"
    for name, counter in counter_set["counters"].items():
        if not dns_label(name):
            yield f"{where}.counters[{name}]: not a DNS label"
        if _quantity(counter["value"]) is None:
            yield f"{where}.counters[{name}]: {counter['value']!r} is not a quantity"


def _device(device: wire.Device, where: str) -> Iterator[str]:
    if not dns_label(device["name"]):
        yield f"{where}.name: {device['name']!r} is not a DNS label"
    attrs, capacity = device.get("attributes", {}), device.get("capacity", {})
    if len(attrs) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        yield (
            f"{where}.attributes: {len(attrs) + len(capacity)} attributes and capacities, "
            f"at most {MAX_ATTRIBUTES_AND_CAPACITIES}"
        )
    for name, value in attrs.items():
        yield from _attribute(name, value, f"{where}.attributes[{name}]")
    for name, cap in capacity.items():
        yield from _capacity(name, cap, f"{where}.capacity[{name}]", device)
    consumes = device.get("consumesCounters", [])
    if len(consumes) > MAX_CONSUMES_COUNTERS:
        yield f"{where}.consumesCounters: {len(consumes)} entries, at most {MAX_CONSUMES_COUNTERS}"
    for k, entry in enumerate(consumes):
        if len(entry["counters"]) > MAX_COUNTERS_PER_SET:
            yield f"{where}.consumesCounters[{k}]: more than {MAX_COUNTERS_PER_SET} counters"
    if len(device.get("taints", [])) > MAX_TAINTS:
        yield f"{where}.taints: more than {MAX_TAINTS}"


def _attribute(name: str, value: wire.DeviceAttribute, where: str) -> Iterator[str]:
    if not qualified_name(name):
        yield f"{where}: not a qualified name"
    if len(value) != 1:
        yield f"{where}: exactly one of int, bool, string, version needed"
    text = value.get("string", value.get("version"))
    if text is not None and len(text) > MAX_STRING:
        yield f"{where}: {len(text)} characters, at most {MAX_STRING}"
    if "version" in value and not _SEMVER.match(value["version"]):
        yield f"{where}: {value['version']!r} is not a semantic version"


def _capacity(
    name: str, cap: wire.DeviceCapacity, where: str, device: wire.Device
) -> Iterator[str]:
    if not qualified_name(name):
        yield f"{where}: not a qualified name"
    value = _quantity(cap["value"])
    if value is None:
        yield f"{where}.value: {cap['value']!r} is not a quantity"
        return
    policy = cap.get("requestPolicy")
    if policy is None:
        return
    if not device.get("allowMultipleAllocations"):
        yield f"{where}.requestPolicy: only allowed with allowMultipleAllocations"
    valid_range = policy.get("validRange")
    if "default" not in policy or valid_range is None or "min" not in valid_range:
        yield f"{where}.requestPolicy: needs default and validRange.min"
        return
    default, low = _quantity(policy["default"]), _quantity(valid_range["min"])
    high = _quantity(valid_range["max"]) if "max" in valid_range else value
    step = _quantity(valid_range.get("step", "1"))
    if default is None or low is None or high is None or not step:
        yield f"{where}.requestPolicy: default, min, max and step must be quantities, step > 0"
        return
    if not low <= default <= high <= value:
        yield f"{where}.requestPolicy: needs min <= default <= max <= value"
    if "step" in valid_range and (default - low) % step:
        yield f"{where}.requestPolicy.default: not min + a multiple of step"


def _consumption(
    device: wire.Device, where: str, sets: dict[str, dict[str, Fraction]]
) -> Iterator[str]:
    for k, entry in enumerate(device.get("consumesCounters", [])):
        totals = sets.get(entry["counterSet"])
        if totals is None:
            yield f"{where}.consumesCounters[{k}]: unknown counter set {entry['counterSet']!r}"
            continue
        for name, counter in entry["counters"].items():
            amount = _quantity(counter["value"])
            if name not in totals:
                yield f"{where}.consumesCounters[{k}].counters[{name}]: not in the counter set"
            elif amount is None:
                yield f"{where}.consumesCounters[{k}].counters[{name}]: not a quantity"
            elif amount > totals[name]:
                yield f"{where}.consumesCounters[{k}].counters[{name}]: more than the set holds"


def _quantity(text: str) -> Fraction | None:
    try:
        return quantities.parse(text)
    except api_errors.ConfigError:
        return None
