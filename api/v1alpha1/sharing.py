"""How the pods of one claim share a full GPU or MIG device: time-slicing or MPS.

A config's ``sharing`` is one of the strategy configs below, or None: the claim's pods then use the
device without any sharing policy. On the wire the strategy is named separately from its settings::

    sharing: {strategy: MPS, mpsConfig: {defaultActiveThreadPercentage: 50}}

here the strategy is the type of the settings object (`TimeSlicingConfig` or `MpsConfig`), so a
decoded config can never hold the settings of one strategy under the name of the other. Memory
limits are whole bytes; decoding turns quantity strings into ints.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from api import errors, quantities


class SharingStrategy(enum.StrEnum):
    TIME_SLICING = "TimeSlicing"
    MPS = "MPS"


class TimeSliceInterval(enum.StrEnum):
    """CUDA time-slice length between the processes on one GPU (``nvidia-smi compute-policy``)."""

    DEFAULT = "Default"
    SHORT = "Short"
    MEDIUM = "Medium"
    LONG = "Long"


@dataclasses.dataclass(frozen=True)
class TimeSlicingConfig:
    """Time-slicing: processes take turns on the whole GPU."""

    strategy: ClassVar[SharingStrategy] = SharingStrategy.TIME_SLICING
    json_field: ClassVar[str] = "timeSlicingConfig"

    interval: TimeSliceInterval = TimeSliceInterval.DEFAULT

    def to_dict(self) -> dict[str, object]:
        return {"interval": self.interval.value}


@dataclasses.dataclass(frozen=True)
class MpsConfig:
    """MPS: one MPS control daemon serves the claim's pods, with these defaults for its clients."""

    strategy: ClassVar[SharingStrategy] = SharingStrategy.MPS
    json_field: ClassVar[str] = "mpsConfig"

    default_active_thread_percentage: int | None = None
    """Share of the device's SMs each client may use, 1 to 100; None: MPS's own default (100)."""
    default_pinned_device_memory_limit: int | None = None
    """Device memory (bytes) each client may allocate on every device; None: no limit."""
    default_per_device_pinned_memory_limit: Mapping[str, int] = dataclasses.field(
        default_factory=dict, hash=False
    )
    """Overrides of the limit above, keyed by GPU/MIG UUID or by device index (see
    `pinned_memory_limits`). Read-only; left out of the hash but not of equality."""

    def __post_init__(self) -> None:
        limits = MappingProxyType(dict(self.default_per_device_pinned_memory_limit))
        object.__setattr__(self, "default_per_device_pinned_memory_limit", limits)

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {}
        if self.default_active_thread_percentage is not None:
            result["defaultActiveThreadPercentage"] = self.default_active_thread_percentage
        if self.default_pinned_device_memory_limit is not None:
            limit = quantities.format_bytes(self.default_pinned_device_memory_limit)
            result["defaultPinnedDeviceMemoryLimit"] = limit
        if self.default_per_device_pinned_memory_limit:
            result["defaultPerDevicePinnedMemoryLimit"] = {
                key: quantities.format_bytes(value)
                for key, value in self.default_per_device_pinned_memory_limit.items()
            }
        return result

    def pinned_memory_limits(self, uuids: Sequence[str]) -> dict[str, int]:
        """Pinned memory limit (bytes) per device, for the devices one MPS daemon serves.

        `uuids` lists those devices in the order their clients see them (CUDA device index 0, 1,
        …); an index key ``"1"`` names ``uuids[1]``. A UUID key beats an index key for the same
        device, and both beat the default. Devices without any limit are left out. A key that
        names none of the devices is a `errors.ConfigError` (path relative to ``mpsConfig``).
        """
        limits = dict.fromkeys(uuids, self.default_pinned_device_memory_limit)
        by_index = {str(i): uuid for i, uuid in enumerate(uuids)}
        overrides = self.default_per_device_pinned_memory_limit
        for key in sorted(overrides, key=lambda k: k in limits):  # index keys first, UUIDs last
            uuid = key if key in limits else by_index.get(key)
            if uuid is None:
                raise errors.ConfigError(
                    f"names none of the devices {', '.join(uuids) or '(none)'}",
                    errors.item("defaultPerDevicePinnedMemoryLimit", key),
                )
            limits[uuid] = overrides[key]
        return {uuid: limit for uuid, limit in limits.items() if limit is not None}


Sharing: TypeAlias = TimeSlicingConfig | MpsConfig


def to_dict(sharing: Sharing) -> dict[str, object]:
    """The JSON form of a ``sharing`` field: the strategy's name and its settings."""
    return {"strategy": sharing.strategy.value, sharing.json_field: sharing.to_dict()}
