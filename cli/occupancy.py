"""The occupancy map: what every GPU of the cluster serves, and to whom (pure data).

`mapping` builds it from the objects `reading` collected; `drawing` and `encoding` render it. The
model knows nothing of terminals or JSON, so both renderings show the same facts:

    Map ── Node ── Gpu ─┬─ whole GPU: its Holders
                        ├─ MigLayout: held placements (MigSlot + Holders), free slices, what fits
                        ├─ SharePool: capacity, and each Share (Holder, memory, cores, Usage)
                        └─ Taints, Health
"""

from __future__ import annotations

import dataclasses
import enum


class Serving(enum.StrEnum):
    """What a GPU serves right now (one at a time: the counters keep them apart)."""

    WHOLE = "whole"
    MIG = "mig"
    SHARES = "shares"
    FREE = "free"


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    phase: str
    """The pod's ``status.phase``; ``Unknown`` for a pod that could not be read."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """A claim holding a device (or one share of it), and the pods it is reserved for."""

    namespace: str
    claim: str
    claim_uid: str
    request: str
    pods: tuple[Pod, ...]
    share_id: str | None = None
    admin_access: bool = False


@dataclasses.dataclass(frozen=True)
class Usage:
    """What a share's processes hold against its limit, from the plugin's metrics."""

    used_bytes: int
    limit_bytes: int


@dataclasses.dataclass(frozen=True)
class Share:
    device: str
    holder: Holder
    memory_bytes: int | None
    """The memory the share consumes (``consumedCapacity``; a fixed share's capacity)."""
    cores: int | None
    """Percent of the GPU's SMs."""
    usage: Usage | None = None


@dataclasses.dataclass(frozen=True)
class SharePool:
    """The shared device of a GPU (full mode) or its fixed shares (compatibility mode)."""

    devices: tuple[str, ...]
    strategy: str
    """``mps`` or ``timeslicing``; empty if not published."""
    memory_bytes: int
    cores: int
    shares: tuple[Share, ...]
    accepting: bool
    """Another share could still be allocated (not tainted, not blocked by MIG or the whole GPU)."""

    @property
    def memory_allocated(self) -> int:
        return sum(s.memory_bytes or 0 for s in self.shares)

    @property
    def cores_allocated(self) -> int:
        return sum(s.cores or 0 for s in self.shares)


@dataclasses.dataclass(frozen=True)
class MigSlot:
    """A published MIG device: one profile at one placement."""

    device: str
    profile: str
    start: int
    size: int
    memory_slices: tuple[int, ...]
    static: bool
    """An instance an admin made (published with its ``uuid``), not created at prepare."""
    holders: tuple[Holder, ...] = ()


@dataclasses.dataclass(frozen=True)
class MigLayout:
    slices: int
    """Memory slices of the GPU (8 on MIG-capable GPUs)."""
    held: tuple[MigSlot, ...]
    free_slices: tuple[int, ...]
    fits: tuple[MigSlot, ...]
    """Unallocated placements a new claim could still get (counters free, not tainted)."""


@dataclasses.dataclass(frozen=True)
class Taint:
    devices: tuple[str, ...]
    """The GPU's devices it is on; empty when it is on all of them."""
    key: str
    value: str
    effect: str
    rule: str | None = None
    """The DeviceTaintRule that sets it; None for a taint published in the slice."""


@dataclasses.dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    product: str
    memory_bytes: int
    multiprocessors: int
    serving: Serving
    health: Health
    health_reason: str
    """Why a GPU is unhealthy (``xid 79``, ``gpu-lost``, the kubelet's report); empty if healthy."""
    whole_device: str | None
    """``gpu-<i>`` if published (not on a GPU an admin carved with MIG)."""
    whole: tuple[Holder, ...]
    mig: MigLayout | None
    shares: SharePool | None
    taints: tuple[Taint, ...]
    fits_whole: bool
    """A claim for the whole GPU could still get it."""


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    pool: str
    gpus: tuple[Gpu, ...]


@dataclasses.dataclass(frozen=True)
class Map:
    driver: str
    nodes: tuple[Node, ...]
    notes: tuple[str, ...] = ()
    """What the map could not see (an API not served, metrics not reachable)."""
