"""Claims as the node sees them: what the kubelet names, and what the API server allocated.

The kubelet sends only namespace, name and UID; the plugin GETs the ResourceClaim and `allocated`
turns it into the devices our driver must prepare, refusing (with a message the user will see in
the pod's events) a claim that was replaced, is not allocated, or has nothing for us.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NewType

ClaimUID = NewType("ClaimUID", str)


class ClaimError(Exception):
    """This claim cannot be prepared as it is; the kubelet will retry it later."""


@dataclasses.dataclass(frozen=True)
class ClaimRef:
    """A claim as the kubelet names it."""

    namespace: str
    name: str
    uid: ClaimUID

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.uid})"


@dataclasses.dataclass(frozen=True)
class AllocatedDevice:
    """One allocation result for our driver."""

    request: str
    """``req`` or ``req/sub`` (a ``firstAvailable`` alternative)."""
    pool: str
    device: str
    share_id: str | None = None
    consumed_capacity: Mapping[str, str] = dataclasses.field(default_factory=dict)
    admin_access: bool = False

    @property
    def base_request(self) -> str:
        return self.request.partition("/")[0]


@dataclasses.dataclass(frozen=True)
class AllocatedClaim:
    ref: ClaimRef
    devices: tuple[AllocatedDevice, ...]
    config: Any
    """``status.allocation.devices.config`` as JSON (all drivers), decoded by `api`."""


def allocated(obj: Mapping[str, Any], *, ref: ClaimRef, driver: str) -> AllocatedClaim:
    """Our part of a ResourceClaim object read from the API server."""
    metadata = obj.get("metadata") or {}
    if metadata.get("uid") != ref.uid:
        raise ClaimError(
            f"claim {ref.namespace}/{ref.name} now has UID {metadata.get('uid')}, not {ref.uid}: "
            "it was deleted and created again"
        )
    allocation = (obj.get("status") or {}).get("allocation")
    if not allocation:
        raise ClaimError(f"claim {ref} is not allocated")
    results = (allocation.get("devices") or {}).get("results") or []
    try:
        devices = tuple(
            AllocatedDevice(
                request=result["request"],
                pool=result["pool"],
                device=result["device"],
                share_id=result.get("shareID"),
                consumed_capacity=dict(result.get("consumedCapacity") or {}),
                admin_access=bool(result.get("adminAccess")),
            )
            for result in results
            if result.get("driver") == driver
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ClaimError(f"claim {ref} has a malformed allocation result: {exc!r}") from exc
    if not devices:
        raise ClaimError(f"claim {ref} has no devices allocated by driver {driver}")
    return AllocatedClaim(
        ref=ref, devices=devices, config=(allocation.get("devices") or {}).get("config") or []
    )
