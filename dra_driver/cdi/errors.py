"""Errors of the CDI spec writer, classified by what the caller should do.

CdiError
├── InvalidSpecError     the spec asked for is not valid CDI: fail the claim (a bug, not a retry)
│   └── InvalidNameError a claim UID or device name with characters CDI does not allow
└── SpecFileError        writing, removing or listing spec files failed (`OSError` chained):
                         fail the claim, the kubelet retries
"""


class CdiError(Exception):
    """Base class of every CDI error."""


class InvalidSpecError(CdiError):
    """The spec would be rejected by a CDI runtime (the message says which rule)."""


class InvalidNameError(InvalidSpecError):
    """A name outside the CDI character set."""


class SpecFileError(CdiError):
    """A spec file or the CDI dir could not be written, removed or read."""
