"""Building the occupancy map from a `reading.Snapshot` (pure computation).

Per pool (node), devices are grouped by the GPU they live on (``index``/``parentIndex``
attributes), sorted out by ``type`` (whole GPU, MIG placement, shared device or fixed share), and
joined with the claims that hold them (`holders`), the taints on them (the slice's own and the
DeviceTaintRules that select them) and, for shares, the usage the plugins' metrics report
(`usage`). What still fits is the scheduler's own counter arithmetic (`pools`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from api import devicetypes
from cli import holders, occupancy, pools, reading
from controller import rest
from dra_driver.slices import building, naming

UsageKey = tuple[str, str]
"""(claim UID, GPU UUID): how the plugin's share metrics name a share."""

BLOCKING = frozenset({"NoSchedule", "NoExecute"})


@dataclasses.dataclass(frozen=True)
class _Pool:
    """One pool and everything about it the GPUs of it share."""

    pool: pools.Pool
    held: Mapping[holders.Key, list[holders.Allocation]]
    used: Mapping[str, Mapping[str, int]]
    sick: set[holders.Key]
    rules: Sequence[rest.Obj]
    driver: str
    usage: Mapping[UsageKey, occupancy.Usage]

    def holders(self, device: pools.Device) -> list[holders.Allocation]:
        return list(self.held.get((self.pool.name, device.name), ()))

    def taints(self, device: pools.Device) -> list[occupancy.Taint]:
        found = [
            occupancy.Taint(
                (device.name,), t.get("key", ""), t.get("value", ""), t.get("effect", "")
            )
            for t in device.taints
        ]
        for rule in self.rules:
            spec = rule.get("spec") or {}
            taint = spec.get("taint") or {}
            if _selects(spec.get("deviceSelector") or {}, self.driver, self.pool.name, device):
                found.append(
                    occupancy.Taint(
                        (device.name,),
                        taint.get("key", ""),
                        taint.get("value", ""),
                        taint.get("effect", ""),
                        rule=rule["metadata"]["name"],
                    )
                )
        return found

    def fits(self, device: pools.Device) -> bool:
        """Unallocated (or, shared, allocated already), untainted, and its counters are free."""
        if any(t.effect in BLOCKING for t in self.taints(device)):
            return False
        if self.holders(device):
            return device.multi
        return pools.fits(self.pool, device, self.used)


def _selects(selector: rest.Obj, driver: str, pool: str, device: pools.Device) -> bool:
    wanted = {"driver": driver, "pool": pool, "device": device.name}
    return all(selector.get(field) in (None, "", value) for field, value in wanted.items())


def build(
    snapshot: reading.Snapshot,
    *,
    driver: str,
    namespace: str | None = None,
    usage: Mapping[UsageKey, occupancy.Usage] | None = None,
    notes: Sequence[str] = (),
) -> occupancy.Map:
    """The map of `driver`'s devices; with `namespace`, only the GPUs serving its claims."""
    held = holders.allocations(snapshot.claims, snapshot.pods, driver=driver)
    sick = holders.unhealthy(snapshot.pods, driver=driver)
    nodes = []
    for pool in pools.current(snapshot.slices):
        allocated = [device for (name, device) in held if name == pool.name]
        context = _Pool(
            pool=pool,
            held=held,
            used=pools.consumed(pool, allocated),
            sick=sick,
            rules=snapshot.taint_rules,
            driver=driver,
            usage=usage or {},
        )
        gpus = [_gpu(context, index, devices) for index, devices in _by_gpu(pool).items()]
        if namespace is not None:
            gpus = [g for g in gpus if namespace in _namespaces(g)]
            if not gpus:
                continue
        nodes.append(occupancy.Node(name=pool.node, pool=pool.name, gpus=tuple(gpus)))
    return occupancy.Map(driver=driver, nodes=tuple(nodes), notes=(*snapshot.notes, *notes))


def _by_gpu(pool: pools.Pool) -> dict[int, list[pools.Device]]:
    grouped: dict[int, list[pools.Device]] = {}
    for device in pool.devices:
        index = device.gpu_index
        if index is not None:
            grouped.setdefault(index, []).append(device)
    return dict(sorted(grouped.items()))


def _kind(device: pools.Device) -> str:
    """``gpu``, ``mig``, ``shared`` (one device, many claims) or ``share`` (a fixed share)."""
    kind = device.attribute("type")
    if kind == devicetypes.DeviceType.SHARED.value:
        return "shared" if device.multi else "share"
    if kind in (devicetypes.DeviceType.GPU.value, devicetypes.DeviceType.MIG.value):
        return str(kind)
    parsed = naming.parse(device.name)
    return parsed.kind if parsed else "unknown"


def _gpu(context: _Pool, index: int, devices: list[pools.Device]) -> occupancy.Gpu:
    kinds: dict[str, list[pools.Device]] = {}
    for device in devices:
        kinds.setdefault(_kind(device), []).append(device)
    whole = next(iter(kinds.get("gpu", [])), None)
    whole_holders = tuple(a.holder for a in context.holders(whole)) if whole else ()
    counter_set = context.pool.counters.get(naming.counter_set(index), {})
    mig = _mig(context, kinds.get("mig", []), counter_set, whole_held=bool(whole_holders))
    shares = _shares(context, kinds.get("shared", []), kinds.get("share", []), _uuid(devices))
    if whole_holders:
        serving = occupancy.Serving.WHOLE
    elif mig is not None and mig.held:
        serving = occupancy.Serving.MIG
    elif shares is not None and shares.shares:
        serving = occupancy.Serving.SHARES
    else:
        serving = occupancy.Serving.FREE
    taints = _merged_taints(context, devices)
    reason = _sickness(context, devices, taints)
    sized = whole or next(iter(kinds.get("shared", [])), None)
    return occupancy.Gpu(
        index=index,
        uuid=_uuid(devices),
        product=str(
            next((d.attribute("productName") for d in devices if d.attribute("productName")), "")
        ),
        memory_bytes=(sized.capacity.get("memory", 0) if sized else 0)
        or counter_set.get("memory", 0),
        multiprocessors=(sized.capacity.get("multiprocessors", 0) if sized else 0)
        or counter_set.get("multiprocessors", 0),
        serving=serving,
        health=occupancy.Health.UNHEALTHY if reason else occupancy.Health.HEALTHY,
        health_reason=reason,
        whole_device=whole.name if whole else None,
        whole=whole_holders,
        mig=mig,
        shares=shares,
        taints=taints,
        fits_whole=whole is not None and context.fits(whole),
    )


def _uuid(devices: list[pools.Device]) -> str:
    for key in ("uuid", "parentUUID"):
        for device in devices:
            value = device.attribute(key)
            if isinstance(value, str) and (key == "parentUUID" or _kind(device) != "mig"):
                return value
    return ""


def _mig(
    context: _Pool,
    devices: list[pools.Device],
    counter_set: Mapping[str, int],
    *,
    whole_held: bool,
) -> occupancy.MigLayout | None:
    if not devices:
        return None
    slots = [_slot(context, device) for device in devices]
    counted = sorted(
        int(name.rsplit("-", 1)[1])
        for name in counter_set
        if name.startswith(naming.memory_slice_counter(0)[:-1])
    )
    slices = len(counted) or max(s.start + s.size for s in slots)
    held = sorted((s for s in slots if s.holders), key=lambda s: (s.start, s.device))
    if counted:
        used = context.used.get(naming.counter_set(devices[0].gpu_index or 0), {})
        free = [k for k in counted if used.get(naming.memory_slice_counter(k), 0) < 1]
    else:
        covered = {k for s in held for k in s.memory_slices}
        free = [] if whole_held else [k for k in range(slices) if k not in covered]
    fits = [
        slot
        for slot, device in zip(slots, devices, strict=True)
        if not slot.holders and context.fits(device)
    ]
    return occupancy.MigLayout(
        slices=slices,
        held=tuple(held),
        free_slices=tuple(free),
        fits=tuple(sorted(fits, key=lambda s: (s.size, s.profile, s.start))),
    )


def _slot(context: _Pool, device: pools.Device) -> occupancy.MigSlot:
    start = device.attribute("placementStart")
    size = device.attribute("placementSize")
    start = start if isinstance(start, int) else 0
    size = size if isinstance(size, int) else 1
    counted = sorted(
        int(name.rsplit("-", 1)[1])
        for costs in device.costs.values()
        for name in costs
        if name.startswith(naming.memory_slice_counter(0)[:-1])
    )
    return occupancy.MigSlot(
        device=device.name,
        profile=str(device.attribute("profile") or ""),
        start=start,
        size=size,
        memory_slices=tuple(counted) or tuple(range(start, start + size)),
        static=device.attribute("uuid") is not None,
        holders=tuple(a.holder for a in context.holders(device)),
    )


def _shares(
    context: _Pool, shared: list[pools.Device], fixed: list[pools.Device], gpu_uuid: str
) -> occupancy.SharePool | None:
    devices = shared or fixed
    if not devices:
        return None
    found = []
    for device in devices:
        for allocation in context.holders(device):
            found.append(
                occupancy.Share(
                    device=device.name,
                    holder=allocation.holder,
                    memory_bytes=allocation.consumed.get("memory")
                    if device.multi
                    else device.capacity.get("memory"),
                    cores=allocation.consumed.get("cores")
                    if device.multi
                    else device.capacity.get("cores"),
                    usage=context.usage.get((allocation.holder.claim_uid, gpu_uuid)),
                )
            )
    return occupancy.SharePool(
        devices=tuple(d.name for d in devices),
        strategy=str(devices[0].attribute("sharingStrategy") or ""),
        memory_bytes=sum(d.capacity.get("memory", 0) for d in devices),
        cores=sum(d.capacity.get("cores", 0) for d in devices),
        shares=tuple(found),
        accepting=any(context.fits(d) for d in devices),
    )


def _merged_taints(context: _Pool, devices: list[pools.Device]) -> tuple[occupancy.Taint, ...]:
    """The GPU's taints, each once, with the devices it is on (none listed: on all of them)."""
    on: dict[tuple[str, str, str, str | None], list[str]] = {}
    for device in devices:
        for taint in context.taints(device):
            on.setdefault((taint.key, taint.value, taint.effect, taint.rule), []).append(
                device.name
            )
    every = len(devices)
    return tuple(
        occupancy.Taint(
            devices=() if len(names) == every else tuple(names),
            key=key,
            value=value,
            effect=effect,
            rule=rule,
        )
        for (key, value, effect, rule), names in sorted(on.items(), key=lambda kv: str(kv[0]))
    )


def _sickness(
    context: _Pool, devices: list[pools.Device], taints: tuple[occupancy.Taint, ...]
) -> str:
    for taint in taints:
        if taint.rule is None and taint.key.startswith(f"{building.TAINT_DOMAIN}/"):
            kind = taint.key.split("/", 1)[1]
            return f"{kind} {taint.value}".strip()
    reported = [d.name for d in devices if (context.pool.name, d.name) in context.sick]
    return f"kubelet reports {', '.join(reported)} unhealthy" if reported else ""


def _namespaces(gpu: occupancy.Gpu) -> set[str]:
    found = {h.namespace for h in gpu.whole}
    if gpu.mig is not None:
        found |= {h.namespace for slot in gpu.mig.held for h in slot.holders}
    if gpu.shares is not None:
        found |= {s.holder.namespace for s in gpu.shares.shares}
    return found
