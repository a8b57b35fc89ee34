"""The claim's accounting state file: created by the plugin at prepare for the quota library, and
read back for metrics.

Layout (``preload/statefile.h``, native byte order: little-endian on x86_64 and aarch64): a
4096-byte header (magic ``GPUQSTAT``, version, ndev, nslots, slot_size, header_size; the lock
word at 64, the claim's usage per device at 72, the high-water slot mark at 640, device UUIDs at
704, limits at 1728, allocations refused for the limit at 2240, each UUID's kind (``G``/``M``) at
2752), then ``nslots`` slots of ``slot_size`` bytes, each ``{u64 generation, u64 pid, u64
used[ndev]}``. Devices come in the order of ``quota.conf`` (sorted by UUID). The file has a fixed
size: the library never creates, grows or replaces it. The plugin creates it (mode 0666) so that
any container user of the claim can take its slot.

A process of the claim holds an OFD lock on bytes of its slot while it (or a forked child that
keeps its memory) lives; `read` asks the kernel which slots are locked, so it counts only what
live processes hold, even before the library reclaims a dead process's slot.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pathlib
import struct
from collections.abc import Sequence

from dra_driver import atomicfiles

MAGIC = b"GPUQSTAT"
VERSION = 1
HEADER_SIZE = 4096
DEFAULT_SLOTS = 1024
MAX_SLOTS = 2047
MAX_DEVICES = 64
LOCK_OFFSET = 64
USAGE_OFFSET = 72
HIGH_WATER_OFFSET = 640
UUID_OFFSET = 704
LIMIT_OFFSET = 1728
REFUSED_OFFSET = 2240
KIND_OFFSET = 2752
FIELDS = struct.Struct("<8sIIIII")  # magic, version, ndev, nslots, slot_size, header_size
_FLOCK = struct.Struct("hhxxxxqqixxxx")  # struct flock on 64-bit Linux


class StateError(Exception):
    """The file is missing, unreadable, or not a state file of this layout."""


@dataclasses.dataclass(frozen=True)
class DeviceState:
    uuid: str
    """``GPU-…`` or ``MIG-…`` (files from before the kind byte read as ``GPU-``)."""
    limit_bytes: int
    charged_bytes: int
    """What the claim's live processes hold on the device (the limit applies to this)."""
    live_processes: int
    """Live processes holding memory on the device."""
    refused: int
    """Allocations refused because they would have passed the limit, since prepare."""


@dataclasses.dataclass(frozen=True)
class ClaimState:
    devices: tuple[DeviceState, ...]
    live_processes: int
    """Processes of the claim that use the quota library now (slots whose lock is held)."""


def uuid_bytes(text: str) -> bytes:
    """``GPU-xxxxxxxx-…`` or ``MIG-…`` → the 16 bytes ``cuDeviceGetUuid_v2`` gives."""
    return bytes.fromhex(text[4:].replace("-", ""))


def uuid_text(raw: bytes, kind: int) -> str:
    hexed = raw.hex()
    prefix = "MIG" if kind == ord("M") else "GPU"
    return f"{prefix}-{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def slot_size(ndev: int) -> int:
    return (16 + 8 * ndev + 63) // 64 * 64


def size(ndev: int, slots: int = DEFAULT_SLOTS) -> int:
    return HEADER_SIZE + slots * slot_size(ndev)


def render(uuids: Sequence[str], limits: Sequence[int], *, slots: int = DEFAULT_SLOTS) -> bytes:
    header = bytearray(HEADER_SIZE)
    FIELDS.pack_into(
        header, 0, MAGIC, VERSION, len(uuids), slots, slot_size(len(uuids)), HEADER_SIZE
    )
    for index, (uuid, limit) in enumerate(zip(uuids, limits, strict=True)):
        header[UUID_OFFSET + 16 * index : UUID_OFFSET + 16 * (index + 1)] = uuid_bytes(uuid)
        struct.pack_into("<Q", header, LIMIT_OFFSET + 8 * index, limit)
        header[KIND_OFFSET + index] = ord("M") if uuid.startswith("MIG-") else ord("G")
    return bytes(header) + bytes(slots * slot_size(len(uuids)))


def create(path: pathlib.Path, uuids: Sequence[str], limits: Sequence[int]) -> None:
    """Write a fresh state file (atomically; mode 0666 so every container user can lock it).

    Not fsynced: the accounting of this boot's containers means nothing after a reboot.
    """
    atomicfiles.write_bytes(path, render(uuids, limits), mode=0o666, durable=False)
    os.chmod(path, 0o666)  # whatever the umask


def _locked(fd: int, start: int, length: int) -> bool:
    """Whether an open file description holds a lock in the range (F_OFD_GETLK)."""
    query = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query)
    return bool(_FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


def _check(data: bytes, path: pathlib.Path) -> tuple[int, int, int]:
    if len(data) < HEADER_SIZE:
        raise StateError(f"{path}: {len(data)} bytes, shorter than the header")
    magic, version, ndev, nslots, slot_bytes, header_size = FIELDS.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise StateError(f"{path}: not a version {VERSION} state file")
    if (
        header_size != HEADER_SIZE
        or ndev > MAX_DEVICES
        or slot_bytes != slot_size(ndev)
        or len(data) != size(ndev, nslots)
    ):
        raise StateError(f"{path}: corrupt header or size ({len(data)} bytes)")
    return ndev, nslots, slot_bytes


def read(path: pathlib.Path) -> ClaimState:
    """What the claim's state file says now: per device, the limit, what live processes hold, how
    many hold it, and refusals. Reads the file (never maps it: a truncated file must not SIGBUS the
    plugin); raises `StateError`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise StateError(f"{path}: {error.strerror}") from error
    try:
        length = os.fstat(fd).st_size
        if length > size(MAX_DEVICES, MAX_SLOTS):
            raise StateError(f"{path}: {length} bytes, more than any state file")
        data = os.pread(fd, length, 0)
        ndev, nslots, slot_bytes = _check(data, path)
        (high_water,) = struct.unpack_from("<I", data, HIGH_WATER_OFFSET)
        charged, holders, live = [0] * ndev, [0] * ndev, 0
        for slot in range(min(high_water, nslots)):
            offset = HEADER_SIZE + slot * slot_bytes
            if not _locked(fd, offset, slot_bytes):
                continue
            live += 1
            for dev, used in enumerate(struct.unpack_from(f"<{ndev}Q", data, offset + 16)):
                charged[dev] += used
                holders[dev] += used > 0
    except OSError as error:
        raise StateError(f"{path}: {error.strerror}") from error
    finally:
        os.close(fd)
    limits = struct.unpack_from(f"<{ndev}Q", data, LIMIT_OFFSET)
    refused = struct.unpack_from(f"<{ndev}Q", data, REFUSED_OFFSET)
    devices = tuple(
        DeviceState(
            uuid=uuid_text(
                data[UUID_OFFSET + 16 * dev : UUID_OFFSET + 16 * (dev + 1)], data[KIND_OFFSET + dev]
            ),
            limit_bytes=limits[dev],
            charged_bytes=charged[dev],
            live_processes=holders[dev],
            refused=refused[dev],
        )
        for dev in range(ndev)
    )
    return ClaimState(devices=devices, live_processes=live)
