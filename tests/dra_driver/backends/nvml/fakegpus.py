"""The simulated GPUs behind the fake NVML: models with real MIG tables, and their MIG instances.

Numbers come from ``nvidia-smi mig -lgip``/``-lgipp`` output and the profile tables of NVIDIA's
MIG User Guide (A100-SXM4-40GB: profile IDs, enums, instance caps, memory in MiB, SMs, engines,
placements) and from the L4's data sheet.
"""

from __future__ import annotations

import dataclasses

from tests.dra_driver.backends.nvml import fakecodes


@dataclasses.dataclass(frozen=True)
class Profile:
    """One GPU-instance profile as ``nvidia-smi mig -lgip``/``-lgipp`` shows it."""

    enum: int
    id: int
    name: str
    slices: int
    instances: int
    multiprocessors: int
    memory_mib: int
    engines: tuple[int, int, int, int, int]
    """Copy engines, NVDEC, NVENC, NVJPG, OFA."""
    starts: tuple[int, ...]
    size: int


_ALL7 = (0, 1, 2, 3, 4, 5, 6)

#: A100-SXM4-40GB, in the order of `Profile`'s fields (NVML's enum, then the ID ``-lgip`` shows).
A100_40GB_PROFILES = (
    Profile(0x0, 19, "1g.5gb", 1, 7, 14, 4864, (1, 0, 0, 0, 0), _ALL7, 1),
    Profile(0x7, 20, "1g.5gb+me", 1, 1, 14, 4864, (1, 1, 0, 1, 1), _ALL7, 1),
    Profile(0x9, 15, "1g.10gb", 1, 4, 14, 9856, (1, 1, 0, 0, 0), (0, 2, 4, 6), 2),
    Profile(0x1, 14, "2g.10gb", 2, 3, 28, 9856, (2, 1, 0, 0, 0), (0, 2, 4), 2),
    Profile(0x2, 9, "3g.20gb", 3, 2, 42, 19968, (3, 2, 0, 0, 0), (0, 4), 4),
    Profile(0x3, 5, "4g.20gb", 4, 1, 56, 19968, (4, 2, 0, 0, 0), (0,), 4),
    Profile(0x4, 0, "7g.40gb", 7, 1, 98, 40192, (7, 5, 0, 1, 1), (0,), 8),
)


@dataclasses.dataclass(eq=False)
class MigDevice:
    """The device handle NVML gives for a compute instance."""

    uuid: str


@dataclasses.dataclass(eq=False)
class ComputeInstance:
    gpu_instance: GpuInstance
    id: int
    profile_id: int
    slices: int
    device: MigDevice
    alive: bool = True


@dataclasses.dataclass(eq=False)
class GpuInstance:
    gpu: Gpu
    id: int
    profile: Profile
    start: int
    compute_instances: dict[int, ComputeInstance] = dataclasses.field(default_factory=dict)
    alive: bool = True

    def overlaps(self, start: int, size: int) -> bool:
        return self.start < start + size and start < self.start + self.profile.size


@dataclasses.dataclass(eq=False)
class Gpu:
    """One simulated GPU; `profiles` empty means no MIG (NVML says NOT_SUPPORTED)."""

    uuid: str
    name: str
    minor: int
    brand: int
    architecture: int
    capability: tuple[int, int]
    memory_mib: int
    bus_id: str
    """As NVML writes it: eight-digit domain, upper case."""
    cores: int
    attributes_multiprocessors: int | None
    """What ``nvmlDeviceGetAttributes`` says; ``None``: NOT_SUPPORTED (full GPUs, older drivers)."""
    profiles: tuple[Profile, ...] = ()
    mig_current: int = 0
    mig_pending: int = 0
    compute_mode: int = 0
    gpu_instances: dict[int, GpuInstance] = dataclasses.field(default_factory=dict)
    event_types: int = 0b1011
    """Events the GPU can report (``nvmlDeviceGetSupportedEventTypes``): XID, both ECC kinds."""
    lost: bool = False
    """Fallen off the bus: calls on it answer GPU_IS_LOST."""

    def profile_by_id(self, profile_id: int) -> Profile:
        for profile in self.profiles:
            if profile.id == profile_id:
                return profile
        raise fakecodes.nvml_error("INVALID_ARGUMENT")


def a100(*, uuid: str, minor: int = 0, bus_id: str = "00000000:07:00.0") -> Gpu:
    return Gpu(
        uuid=uuid,
        name="NVIDIA A100-SXM4-40GB",
        minor=minor,
        brand=fakecodes.CONSTANTS["NVML_BRAND_NVIDIA"],
        architecture=fakecodes.CONSTANTS["NVML_DEVICE_ARCH_AMPERE"],
        capability=(8, 0),
        memory_mib=40960,
        bus_id=bus_id,
        cores=6912,
        attributes_multiprocessors=108,
        profiles=A100_40GB_PROFILES,
    )


def l4(*, uuid: str, minor: int = 1, bus_id: str = "00000000:C1:00.0") -> Gpu:
    return Gpu(
        uuid=uuid,
        name="NVIDIA L4",
        minor=minor,
        brand=fakecodes.CONSTANTS["NVML_BRAND_NVIDIA"],
        architecture=fakecodes.CONSTANTS["NVML_DEVICE_ARCH_ADA"],
        capability=(8, 9),
        memory_mib=23034,
        bus_id=bus_id,
        cores=7424,
        attributes_multiprocessors=None,
    )
