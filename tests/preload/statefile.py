"""The claim's state file, read and written the way ``preload/statefile.h`` lays it out.

The layout and the writer are the plugin's (`dra_driver.isolation.quotastate`); the reader is
here: native byte order (little-endian on x86_64 and aarch64), a 4096-byte header (magic,
version, ndev, nslots, slot_size, header_size; the lock word at 64, the claim's usage per device
at 72, the high-water slot mark at 640, UUIDs at 704, limits at 1728, refusals at 2240, UUID kinds
at 2752), then ``nslots`` slots of ``slot_size`` bytes, each ``{u64 generation, u64 pid, u64
used[ndev]}``. A file made by the plugin is all zeros past the fields `create` sets. (The plugin's
own reader, for metrics, is `quotastate.read`.)
"""

from __future__ import annotations

import dataclasses
import pathlib
import struct
from collections.abc import Sequence

from dra_driver.isolation import quotastate

MAGIC = quotastate.MAGIC
VERSION = quotastate.VERSION
HEADER_SIZE = quotastate.HEADER_SIZE
DEFAULT_SLOTS = quotastate.DEFAULT_SLOTS
LOCK_OFFSET = quotastate.LOCK_OFFSET
USAGE_OFFSET = quotastate.USAGE_OFFSET
HIGH_WATER_OFFSET = quotastate.HIGH_WATER_OFFSET
UUID_OFFSET = quotastate.UUID_OFFSET
LIMIT_OFFSET = quotastate.LIMIT_OFFSET
REFUSED_OFFSET = quotastate.REFUSED_OFFSET
_FIELDS = quotastate.FIELDS


@dataclasses.dataclass(frozen=True)
class Slot:
    index: int
    generation: int
    pid: int
    used: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class State:
    magic: bytes
    version: int
    uuids: tuple[bytes, ...]
    limits: tuple[int, ...]
    usage: tuple[int, ...]
    """The header's per-device usage (the sum over slots)."""
    refused: tuple[int, ...]
    nslots: int
    slot_size: int
    lock: int
    high_water: int
    slots: tuple[Slot, ...]
    """The slots below the high-water mark."""

    def slot_total(self, dev: int = 0) -> int:
        return sum(slot.used[dev] for slot in self.slots)


uuid_bytes = quotastate.uuid_bytes
slot_size = quotastate.slot_size


def create(path: pathlib.Path, uuids: Sequence[str], limits: Sequence[int]) -> None:
    """What the plugin does in Prepare."""
    quotastate.create(path, uuids, limits)


def read(path: pathlib.Path) -> State:
    data = path.read_bytes()
    magic, version, ndev, nslots, size, _ = _FIELDS.unpack_from(data, 0)
    (lock,) = struct.unpack_from("<I", data, LOCK_OFFSET)
    (high_water,) = struct.unpack_from("<I", data, HIGH_WATER_OFFSET)
    slots = []
    for index in range(min(high_water, nslots)):
        offset = HEADER_SIZE + index * size
        generation, pid, *used = struct.unpack_from(f"<QQ{ndev}Q", data, offset)
        slots.append(Slot(index, generation, pid, tuple(used)))
    return State(
        magic=magic,
        version=version,
        uuids=tuple(data[UUID_OFFSET + 16 * i : UUID_OFFSET + 16 * (i + 1)] for i in range(ndev)),
        limits=struct.unpack_from(f"<{ndev}Q", data, LIMIT_OFFSET),
        usage=struct.unpack_from(f"<{ndev}Q", data, USAGE_OFFSET),
        refused=struct.unpack_from(f"<{ndev}Q", data, REFUSED_OFFSET),
        nslots=nslots,
        slot_size=size,
        lock=lock,
        high_water=high_water,
        slots=tuple(slots),
    )


def write_lock_word(path: pathlib.Path, value: int) -> None:
    with path.open("r+b") as file:
        file.seek(LOCK_OFFSET)
        file.write(struct.pack("<I", value))
