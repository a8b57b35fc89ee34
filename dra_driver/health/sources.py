"""Hardware health events, and the seam through which a backend delivers them.

A backend's `EventSource` is used by one thread only (the watcher's): `open` registers for the
events, `wait` blocks for at most its timeout and returns what arrived, `probe` asks whether a GPU
answers at all, `close` releases it. Errors say what the watcher should do: `UnsupportedError`
(nothing to watch on this node: logged once, the watcher only probes) or `SourceError` (anything
else: close, back off, open again).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Protocol


class EventKind(enum.Enum):
    XID = "xid"
    """A critical XID error; `Event.xid` says which."""
    DOUBLE_BIT_ECC = "double-bit-ecc"
    """An uncorrectable ECC error (XID 48)."""
    SINGLE_BIT_ECC = "single-bit-ecc"
    """A corrected ECC error: counted, never a reason to taint."""
    LOST = "lost"
    """The GPU stopped answering (NVML_ERROR_GPU_IS_LOST)."""


@dataclasses.dataclass(frozen=True)
class Event:
    gpu_uuid: str | None
    """None when the source could not tell which GPU (counted and dropped)."""
    kind: EventKind
    time: float
    """Unix time at which the event was seen."""
    xid: int = 0
    detail: str = ""
    """Anything the source knows beyond the kind (a MIG instance, an injected message)."""


class SourceError(Exception):
    """The source failed; close it, back off, open it again."""


class UnsupportedError(SourceError):
    """No GPU of this node can report events: there is nothing to wait for."""


class EventSource(Protocol):
    def open(self) -> None:
        """Register for the events; raises `UnsupportedError` or `SourceError`."""
        ...

    def wait(self, timeout_s: float) -> Sequence[Event]:
        """The events that arrived within `timeout_s` (empty: none); raises `SourceError`."""
        ...

    def probe(self, gpu_uuid: str) -> bool:
        """Whether the GPU answers now (False: it is lost); never raises."""
        ...

    def close(self) -> None:
        """Release what `open` registered; idempotent, never raises."""
        ...
