"""Errors raised by GPU backends, classified by what the caller should do.

    BackendError
    ├── UnknownGpuError        no such GPU (a claim names a device this node does not have)
    ├── MigError               a MIG operation was refused
    │   ├── PlacementOccupiedError   the placement overlaps an existing instance
    │   ├── MigModeError             MIG is off, or cannot be toggled (instances exist, GPU busy)
    │   └── InstanceNotFoundError    destroy of an instance that is gone (callers treat as done)
    └── BackendUnavailableError  the backend cannot be used at all (NVML missing, bad spec): stop

Foreign exceptions (`pynvml.NVMLError`, `OSError`) are translated at the edge and chained with
``from``.
"""


class BackendError(Exception):
    """Base class of every GPU backend error."""


class BackendUnavailableError(BackendError):
    """The backend cannot start: the process should stop with this message."""


class UnknownGpuError(BackendError):
    """A GPU UUID that this backend does not know."""


class MigError(BackendError):
    """A MIG operation failed; the claim that asked for it fails."""


class PlacementOccupiedError(MigError):
    """The requested placement overlaps a MIG instance that already exists."""


class MigModeError(MigError):
    """MIG mode is off where it must be on, or cannot be changed right now."""


class InstanceNotFoundError(MigError):
    """The MIG instance to destroy does not exist (already gone)."""
