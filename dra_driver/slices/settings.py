"""How a node publishes its GPUs: the operating mode and the shared-device policy.

Decided once at start-up (flags, Helm values, server capabilities) and passed down.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from dra_driver import hardware


class Mode(enum.Enum):
    """What the cluster's scheduler can do, and so what the node publishes."""

    FULL = "full"
    """Kubernetes ≥ 1.37 semantics: counter sets, dynamic MIG placements, consumable shares."""
    COMPAT = "compat"
    """No partitionable devices or consumable capacity: full GPUs, static MIG, fixed shares."""


class SharingStrategy(enum.Enum):
    """How the shares of a GPU's shared device split compute; set per GPU by the admin."""

    MPS = "mps"
    TIMESLICING = "timeslicing"


@dataclasses.dataclass(frozen=True)
class SharedSettings:
    """The shared device of each GPU (full mode) and the fixed shares (compatibility mode)."""

    enabled: bool = True
    """Publish ``gpu-<i>-shared`` in full mode."""
    strategy: SharingStrategy = SharingStrategy.MPS
    """The node's strategy for shared devices; MPS needs exclusive-process mode for everyone."""
    strategy_overrides: Mapping[str, SharingStrategy] = dataclasses.field(default_factory=dict)
    """Per-GPU strategy, keyed by GPU UUID or index (as a string)."""
    memory_step: int = 256 * hardware.MIB
    """Granularity of ``memory`` requests; requests round up to a multiple of it."""
    memory_default: int = 1 * hardware.GIB
    """What a share that asks for no memory gets (never zero: a zero share is invisible)."""
    cores_default: int = 0
    """What a share that asks for no ``cores`` gets: 0 = best effort, no reservation and no cap."""
    compat_shares: int = 0
    """Compatibility mode: fixed ``gpu-<i>-share-<k>`` devices per GPU (0 = whole GPUs only)."""

    def strategy_for(self, gpu: hardware.GpuInfo) -> SharingStrategy:
        return self.strategy_overrides.get(
            gpu.uuid, self.strategy_overrides.get(str(gpu.index), self.strategy)
        )


@dataclasses.dataclass(frozen=True)
class PublishSettings:
    """Everything the device builder needs besides the inventory."""

    mode: Mode = Mode.FULL
    dynamic_mig: bool = True
    """Full mode: publish every MIG profile × placement of MIG-capable GPUs, created on demand."""
    shared: SharedSettings = dataclasses.field(default_factory=SharedSettings)
