"""Who holds which device: claims' allocations, joined to the pods they are reserved for.

A claim's ``status.allocation.devices.results`` names the devices (``pool``, ``device``; a share
also its ``shareID`` and ``consumedCapacity``), and ``status.reservedFor`` the pods using it. The
kubelet reports a device's health in its pods' ``allocatedResourcesStatus`` (resource IDs
``<driver>/<pool>/<device>``), which marks a GPU unhealthy as well as our own taints do.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping

from cli import occupancy, pools
from controller import rest

Key = tuple[str, str]
"""(pool, device)."""


@dataclasses.dataclass(frozen=True)
class Allocation:
    holder: occupancy.Holder
    consumed: Mapping[str, int]
    """``consumedCapacity``: capacity name → amount (empty for an exclusive device)."""


def allocations(
    claims: Iterable[rest.Obj], pods: Iterable[rest.Obj], *, driver: str
) -> dict[Key, list[Allocation]]:
    """Every device of `driver` allocated to a claim, with the claims holding it."""
    phases = {
        (p["metadata"].get("namespace", ""), p["metadata"]["name"]): (p.get("status") or {}).get(
            "phase", "Unknown"
        )
        for p in pods
    }
    found: dict[Key, list[Allocation]] = collections.defaultdict(list)
    for claim in claims:
        meta, status = claim["metadata"], claim.get("status") or {}
        namespace = meta.get("namespace", "")
        reserved = sorted(
            r["name"] for r in status.get("reservedFor") or [] if r.get("resource") == "pods"
        )
        held_by = tuple(occupancy.Pod(n, phases.get((namespace, n), "Unknown")) for n in reserved)
        results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
        for result in results:
            if result.get("driver") != driver:
                continue
            holder = occupancy.Holder(
                namespace=namespace,
                claim=meta["name"],
                claim_uid=meta.get("uid", ""),
                request=result.get("request", ""),
                pods=held_by,
                share_id=result.get("shareID"),
                admin_access=bool(result.get("adminAccess")),
            )
            consumed = {
                name: pools.quantity(amount)
                for name, amount in (result.get("consumedCapacity") or {}).items()
            }
            found[(result["pool"], result["device"])].append(Allocation(holder, consumed))
    for held in found.values():
        held.sort(key=_order)
    return found


def unhealthy(pods: Iterable[rest.Obj], *, driver: str) -> set[Key]:
    """Devices of `driver` that the kubelet reports unhealthy in some pod's status."""
    found = set()
    prefix = f"{driver}/"
    for pod in pods:
        status = pod.get("status") or {}
        containers = (status.get("containerStatuses") or []) + (
            status.get("initContainerStatuses") or []
        )
        for container in containers:
            for entry in container.get("allocatedResourcesStatus") or []:
                for resource in entry.get("resources") or []:
                    resource_id = resource.get("resourceID", "")
                    if resource.get("health") == "Unhealthy" and resource_id.startswith(prefix):
                        pool, _, device = resource_id[len(prefix) :].rpartition("/")
                        found.add((pool, device))
    return found


def _order(allocation: Allocation) -> tuple[str, tuple[str, ...], str, str]:
    holder = allocation.holder
    return (
        holder.namespace,
        tuple(p.name for p in holder.pods),
        holder.claim,
        holder.share_id or "",
    )
