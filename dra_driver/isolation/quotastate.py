"""The claim's accounting state file, created by the plugin at prepare for the quota library.

Layout (``preload/statefile.h``, native byte order: little-endian on x86_64 and aarch64): a
4096-byte header (magic ``GPUQSTAT``, version, ndev, nslots, slot_size, header_size; the lock
word at 64, the claim's usage per device at 72, the high-water slot mark at 640, device UUIDs at
704, limits at 1728), then ``nslots`` slots of ``slot_size`` bytes, each ``{u64 generation, u64
pid, u64 used[ndev]}``. Devices come in the order of ``quota.conf`` (sorted by UUID). The plugin
creates it (mode 0666) so that any container user of the claim can take its slot; the library
only creates it itself when the directory is writable.
"""

from __future__ import annotations

import os
import pathlib
import struct
from collections.abc import Sequence

from dra_driver import atomicfiles

MAGIC = b"GPUQSTAT"
VERSION = 1
HEADER_SIZE = 4096
DEFAULT_SLOTS = 1024
LOCK_OFFSET = 64
USAGE_OFFSET = 72
HIGH_WATER_OFFSET = 640
UUID_OFFSET = 704
LIMIT_OFFSET = 1728
FIELDS = struct.Struct("<8sIIIII")  # magic, version, ndev, nslots, slot_size, header_size


def uuid_bytes(text: str) -> bytes:
    """``GPU-xxxxxxxx-…`` or ``MIG-…`` → the 16 bytes ``cuDeviceGetUuid_v2`` gives."""
    return bytes.fromhex(text[4:].replace("-", ""))


def slot_size(ndev: int) -> int:
    return (16 + 8 * ndev + 63) // 64 * 64


def render(uuids: Sequence[str], limits: Sequence[int], *, slots: int = DEFAULT_SLOTS) -> bytes:
    header = bytearray(HEADER_SIZE)
    FIELDS.pack_into(
        header, 0, MAGIC, VERSION, len(uuids), slots, slot_size(len(uuids)), HEADER_SIZE
    )
    for index, (uuid, limit) in enumerate(zip(uuids, limits, strict=True)):
        header[UUID_OFFSET + 16 * index : UUID_OFFSET + 16 * (index + 1)] = uuid_bytes(uuid)
        struct.pack_into("<Q", header, LIMIT_OFFSET + 8 * index, limit)
    return bytes(header) + bytes(slots * slot_size(len(uuids)))


def create(path: pathlib.Path, uuids: Sequence[str], limits: Sequence[int]) -> None:
    """Write a fresh state file (atomically; mode 0666 so every container user can lock it)."""
    atomicfiles.write_bytes(path, render(uuids, limits), mode=0o666)
    os.chmod(path, 0o666)  # whatever the umask
