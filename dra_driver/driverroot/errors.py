"""Errors of driver-root discovery, classified by what the caller should do.

DriverRootError
├── IncompleteDriverRootError  the driver root lacks what a CUDA container needs (no libcuda of the
│                              kernel module's version, a missing device node, an unreadable
│                              folder): fail the claim with the message and try again on the next
│                              prepare, never write a spec without the driver
└── MigCapabilityError         a MIG device's capability file under the proc root is missing or
                               unreadable: fail the claim, naming the path looked for
"""


class DriverRootError(Exception):
    """Base class of every driver-root error; the message says what is missing and where."""


class IncompleteDriverRootError(DriverRootError):
    """What a container needs from the driver cannot be found (yet)."""


class MigCapabilityError(DriverRootError):
    """A MIG GPU or compute instance has no readable capability file."""
