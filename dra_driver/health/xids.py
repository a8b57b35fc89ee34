"""Which XID errors are the application's fault (nothing to do) and which make a GPU unhealthy.

NVML reports every "critical" XID through `nvmlEventTypeXidCriticalError`, but many of them are
raised by one faulty program (an illegal address, a page fault, an exception in an engine) and
leave the GPU perfectly usable for the next one. Those are the application XIDs below: NVIDIA's
device plugin and DCGM treat 13, 31, 43, 45, 68 and 109 so, and the XID catalog marks 69 (a
graphics engine class error) and 94 (a contained ECC error: only the process that used the
memory is killed) as errors of the running program too. An admin adds more with
``--health-ignore-xids``.

Every other XID, known or not, makes the GPU unhealthy: it is critical by NVML's definition and
the safe default is not to schedule new work on it. The names of the common fatal ones only make
the messages readable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 69, 94, 109})
"""XIDs caused by the program running on the GPU; the GPU stays healthy."""

DOUBLE_BIT_ECC_XID = 48
"""The XID of an uncorrectable (double-bit) ECC error: NVML's double-bit ECC event maps to it."""

NAMES = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    45: "preemptive cleanup, due to previous errors",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failure",
    68: "video processor exception",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    109: "context switch timeout",
    119: "GSP RPC timeout",
    120: "GSP error",
    140: "unrecovered ECC error",
}


def parse(text: str) -> frozenset[int]:
    """XIDs from a flag value: ``"74,79"`` → {74, 79}; empty → none. Bad input: ValueError."""
    found: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or int(item) == 0:
            raise ValueError(f"not an XID: {item!r} (expected positive integers, e.g. 74,79)")
        found.add(int(item))
    return frozenset(found)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """Decides which XIDs change a GPU's health."""

    ignored: frozenset[int] = APPLICATION_XIDS

    @classmethod
    def with_extra(cls, extra: Iterable[int]) -> Classifier:
        """The application XIDs plus `extra` (an admin's ``--health-ignore-xids``)."""
        return cls(ignored=APPLICATION_XIDS | frozenset(extra))

    def is_fatal(self, xid: int) -> bool:
        """Whether XID `xid` makes the GPU unhealthy."""
        return xid not in self.ignored


def describe(xid: int) -> str:
    """``XID 79 (GPU has fallen off the bus)``, or ``XID 200`` for one without a known name."""
    name = NAMES.get(xid)
    return f"XID {xid} ({name})" if name else f"XID {xid}"
