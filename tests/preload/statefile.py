"""The claim's state file, read and written the way ``preload/statefile.h`` lays it out.

A reference for the kubelet plugin too (which may create the file in Prepare and read it for
metrics): native byte order (little-endian on x86_64 and aarch64), a 4096-byte header (magic,
version, ndev, nslots, slot_size, header_size; the lock word at 64, the claim's usage per device
at 72, the high-water slot mark at 640, UUIDs at 704, limits at 1728), then ``nslots`` slots of
``slot_size`` bytes, each ``{u64 generation, u64 pid, u64 used[ndev]}``. A file made by the plugin
is all zeros past the fields `create` sets.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import struct
from collections.abc import Sequence

MAGIC = b"GPUQSTAT"
VERSION = 1
HEADER_SIZE = 4096
DEFAULT_SLOTS = 1024
LOCK_OFFSET = 64
USAGE_OFFSET = 72
HIGH_WATER_OFFSET = 640
UUID_OFFSET = 704
LIMIT_OFFSET = 1728
_FIELDS = struct.Struct("<8sIIIII")  # magic, version, ndev, nslots, slot_size, header_size


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
    nslots: int
    slot_size: int
    lock: int
    high_water: int
    slots: tuple[Slot, ...]
    """The slots below the high-water mark."""

    def slot_total(self, dev: int = 0) -> int:
        return sum(slot.used[dev] for slot in self.slots)


def uuid_bytes(text: str) -> bytes:
    """'GPU-xxxxxxxx-…' or 'MIG-…' -> the 16 bytes cuDeviceGetUuid_v2 gives."""
    return bytes.fromhex(text[4:].replace("-", ""))


def slot_size(ndev: int) -> int:
    return (16 + 8 * ndev + 63) // 64 * 64


def create(path: pathlib.Path, uuids: Sequence[str], limits: Sequence[int]) -> None:
    """What the plugin would do in Prepare (mode 0666 so every container user can lock it)."""
    header = bytearray(HEADER_SIZE)
    _FIELDS.pack_into(
        header, 0, MAGIC, VERSION, len(uuids), DEFAULT_SLOTS, slot_size(len(uuids)), HEADER_SIZE
    )
    for index, (uuid, limit) in enumerate(zip(uuids, limits, strict=True)):
        header[UUID_OFFSET + 16 * index : UUID_OFFSET + 16 * (index + 1)] = uuid_bytes(uuid)
        struct.pack_into("<Q", header, LIMIT_OFFSET + 8 * index, limit)
    path.write_bytes(bytes(header) + bytes(DEFAULT_SLOTS * slot_size(len(uuids))))
    os.chmod(path, 0o666)


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
