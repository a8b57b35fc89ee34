"""What a GPU backend reports about the hardware: GPUs, their MIG profiles, placements and instances.

These frozen dataclasses are the vocabulary between the backends (`dra_driver.backends`, NVML or
fake) and everything above them (inventory, device builder, isolation managers). They hold facts
only; deciding what to publish or prepare happens elsewhere.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

MIB = 1024 * 1024
GIB = 1024 * MIB

#: MIG memory is cut into this many slices on every MIG-capable GPU (A100, H100, H200).
MEMORY_SLICES = 8


class ComputeMode(enum.Enum):
    """NVML compute modes we use (values are NVML's)."""

    DEFAULT = 0
    PROHIBITED = 2
    """Set by an admin: no CUDA contexts at all. The driver never sets it."""
    EXCLUSIVE_PROCESS = 3


class TimesliceInterval(enum.Enum):
    """NVML/nvidia-smi time-slice levels (values are the `--set-timeslice` arguments)."""

    DEFAULT = 0
    SHORT = 1
    MEDIUM = 2
    LONG = 3


@dataclasses.dataclass(frozen=True, order=True)
class Placement:
    """A MIG placement: `size` memory slices starting at slice `start`."""

    start: int
    size: int

    @property
    def memory_slices(self) -> range:
        return range(self.start, self.start + self.size)

    def overlaps(self, other: Placement) -> bool:
        return self.start < other.start + other.size and other.start < self.start + self.size


@dataclasses.dataclass(frozen=True)
class MigProfile:
    """A GPU-instance profile as NVML describes it (`nvmlDeviceGetGpuInstanceProfileInfo`)."""

    name: str
    """Canonical name, e.g. ``1g.5gb`` or ``1g.5gb+me``."""
    profile_id: int
    """NVML GPU-instance profile ID (``nvidia-smi mig -lgip``), e.g. 19 for ``1g.5gb``."""
    compute_slices: int
    max_instances: int
    memory_bytes: int
    multiprocessors: int
    copy_engines: int
    decoders: int
    encoders: int
    jpeg_engines: int
    ofa_engines: int
    placements: tuple[Placement, ...]


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    """One physical GPU, as discovered at start-up."""

    index: int
    minor: int
    uuid: str
    product_name: str
    brand: str
    architecture: str
    cuda_compute_capability: str
    """``major.minor``, e.g. ``8.0``."""
    driver_version: str
    """As NVML prints it, e.g. ``560.35.03`` (not necessarily semver)."""
    cuda_driver_version: str
    """``major.minor``, e.g. ``12.6``."""
    memory_bytes: int
    multiprocessors: int
    pci_bus_id: str
    """Domain-qualified, e.g. ``0000:07:00.0``."""
    pcie_root: str
    """The PCIe root complex in the Kubernetes standard form, e.g. ``pci0000:00``; empty if unknown."""
    numa_node: int | None
    mig_profiles: tuple[MigProfile, ...] = ()
    """Empty when the GPU cannot do MIG."""

    @property
    def mig_capable(self) -> bool:
        return bool(self.mig_profiles)

    def mig_profile(self, profile_id: int) -> MigProfile:
        for profile in self.mig_profiles:
            if profile.profile_id == profile_id:
                return profile
        raise KeyError(f"GPU {self.uuid} has no MIG profile with ID {profile_id}")


@dataclasses.dataclass(frozen=True)
class MigInstance:
    """A MIG device that exists on a GPU: one GPU instance with one compute instance."""

    parent_uuid: str
    profile_id: int
    profile_name: str
    placement: Placement
    uuid: str
    """``MIG-…`` as NVML reports it."""
    gpu_instance_id: int
    compute_instance_id: int


@dataclasses.dataclass(frozen=True)
class GpuStatus:
    """The mutable state of one GPU that the driver reads and changes."""

    uuid: str
    mig_enabled: bool
    mig_instances: tuple[MigInstance, ...]
    compute_mode: ComputeMode
    timeslice: TimesliceInterval


@dataclasses.dataclass(frozen=True)
class HealthEvent:
    """Why a GPU is unhealthy: the event that made it so (a fatal XID error, the GPU lost).

    Decided by `dra_driver.health` (which XIDs count, when a GPU is healthy again).
    """

    gpu_uuid: str
    xid: int
    """The XID error code (0 when the GPU fell off the bus or is otherwise lost)."""
    message: str
    time: float
    """Unix time of the event."""

    @property
    def lost(self) -> bool:
        """The GPU stopped answering (fell off the bus, NVML_ERROR_GPU_IS_LOST)."""
        return self.xid == 0


def overlapping(placement: Placement, others: Iterable[Placement]) -> list[Placement]:
    """The placements among `others` that share a memory slice with `placement`."""
    return [other for other in others if placement.overlaps(other)]
