"""``-o json``: the occupancy map as a stable, documented JSON document (docs/occupancy.md).

The schema is ours and versioned (``apiVersion: gpu.dra.dev/v1alpha1``, ``kind: OccupancyMap``);
field names follow Kubernetes' camelCase, byte amounts are integers, absent parts are ``null``.
A field is only ever added to this version, never renamed or removed.
"""

from __future__ import annotations

from typing import TypedDict

from cli import occupancy

API_VERSION = "gpu.dra.dev/v1alpha1"
KIND = "OccupancyMap"


class PodJson(TypedDict):
    name: str
    phase: str


class HolderJson(TypedDict):
    namespace: str
    claim: str
    claimUID: str
    request: str
    shareID: str | None
    adminAccess: bool
    pods: list[PodJson]


class WholeJson(TypedDict):
    device: str
    fits: bool
    holders: list[HolderJson]


class SlotJson(TypedDict):
    device: str
    profile: str
    start: int
    size: int
    memorySlices: list[int]
    static: bool


class HeldSlotJson(SlotJson):
    holders: list[HolderJson]


class MigJson(TypedDict):
    slices: int
    freeSlices: list[int]
    held: list[HeldSlotJson]
    fits: list[SlotJson]


class UsageJson(TypedDict):
    usedBytes: int
    limitBytes: int


class ShareJson(TypedDict):
    device: str
    memoryBytes: int | None
    cores: int | None
    holder: HolderJson
    usage: UsageJson | None


class SharesJson(TypedDict):
    devices: list[str]
    strategy: str
    memoryBytes: int
    cores: int
    memoryAllocatedBytes: int
    coresAllocated: int
    accepting: bool
    shares: list[ShareJson]


class TaintJson(TypedDict):
    key: str
    value: str
    effect: str
    devices: list[str]
    rule: str | None


class HealthJson(TypedDict):
    status: str
    reason: str


class GpuJson(TypedDict):
    index: int
    uuid: str
    product: str
    memoryBytes: int
    multiprocessors: int
    serving: str
    health: HealthJson
    whole: WholeJson | None
    mig: MigJson | None
    shares: SharesJson | None
    taints: list[TaintJson]


class NodeJson(TypedDict):
    name: str
    pool: str
    gpus: list[GpuJson]


MapJson = TypedDict(  # noqa: UP013 (apiVersion is not an identifier-friendly key for the class form)
    "MapJson",
    {"apiVersion": str, "kind": str, "driver": str, "nodes": list[NodeJson], "notes": list[str]},
)


def encode(snapshot: occupancy.Map) -> MapJson:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "driver": snapshot.driver,
        "nodes": [
            {"name": n.name, "pool": n.pool, "gpus": [_gpu(g) for g in n.gpus]}
            for n in snapshot.nodes
        ],
        "notes": list(snapshot.notes),
    }


def _gpu(gpu: occupancy.Gpu) -> GpuJson:
    whole: WholeJson | None = None
    if gpu.whole_device is not None:
        whole = {
            "device": gpu.whole_device,
            "fits": gpu.fits_whole,
            "holders": [_holder(h) for h in gpu.whole],
        }
    return {
        "index": gpu.index,
        "uuid": gpu.uuid,
        "product": gpu.product,
        "memoryBytes": gpu.memory_bytes,
        "multiprocessors": gpu.multiprocessors,
        "serving": gpu.serving.value,
        "health": {"status": gpu.health.value, "reason": gpu.health_reason},
        "whole": whole,
        "mig": _mig(gpu.mig) if gpu.mig is not None else None,
        "shares": _shares(gpu.shares) if gpu.shares is not None else None,
        "taints": [
            {
                "key": t.key,
                "value": t.value,
                "effect": t.effect,
                "devices": list(t.devices),
                "rule": t.rule,
            }
            for t in gpu.taints
        ],
    }


def _slot(slot: occupancy.MigSlot) -> SlotJson:
    return {
        "device": slot.device,
        "profile": slot.profile,
        "start": slot.start,
        "size": slot.size,
        "memorySlices": list(slot.memory_slices),
        "static": slot.static,
    }


def _mig(layout: occupancy.MigLayout) -> MigJson:
    return {
        "slices": layout.slices,
        "freeSlices": list(layout.free_slices),
        "held": [{**_slot(s), "holders": [_holder(h) for h in s.holders]} for s in layout.held],
        "fits": [_slot(s) for s in layout.fits],
    }


def _shares(pool: occupancy.SharePool) -> SharesJson:
    return {
        "devices": list(pool.devices),
        "strategy": pool.strategy,
        "memoryBytes": pool.memory_bytes,
        "cores": pool.cores,
        "memoryAllocatedBytes": pool.memory_allocated,
        "coresAllocated": pool.cores_allocated,
        "accepting": pool.accepting,
        "shares": [
            {
                "device": s.device,
                "memoryBytes": s.memory_bytes,
                "cores": s.cores,
                "holder": _holder(s.holder),
                "usage": {"usedBytes": s.usage.used_bytes, "limitBytes": s.usage.limit_bytes}
                if s.usage
                else None,
            }
            for s in pool.shares
        ],
    }


def _holder(holder: occupancy.Holder) -> HolderJson:
    return {
        "namespace": holder.namespace,
        "claim": holder.claim,
        "claimUID": holder.claim_uid,
        "request": holder.request,
        "shareID": holder.share_id,
        "adminAccess": holder.admin_access,
        "pods": [{"name": p.name, "phase": p.phase} for p in holder.pods],
    }
