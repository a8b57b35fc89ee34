"""Errors of the checkpoint, classified by what the caller should do.

    CheckpointError
    ├── CorruptCheckpointError     the file cannot be trusted: `store.load` sets it aside, starts empty
    │   ├── MalformedError         not JSON, or not our envelope (kind, version, checksum, data)
    │   ├── UnknownVersionError    a version this build cannot read (e.g. written by a newer one)
    │   ├── ChecksumMismatchError  data does not match its checksum (torn or edited by hand)
    │   └── SchemaError            data does not match its version's schema
    └── CheckpointIOError          reading, setting aside or writing failed (`OSError` chained)

`store.load` never raises a `CorruptCheckpointError`; a `CheckpointIOError` from it means the
node's state is unknown, and the process should stop rather than guess. From `store.save` it fails
the claim being prepared or unprepared; the kubelet retries.
"""


class CheckpointError(Exception):
    """Base class of every checkpoint error."""


class CorruptCheckpointError(CheckpointError):
    """The checkpoint file exists but cannot be decoded."""


class MalformedError(CorruptCheckpointError):
    """Not JSON, or not a ``GpuDraCheckpoint`` envelope."""


class UnknownVersionError(CorruptCheckpointError):
    """The envelope names a version this build has no decoder for."""


class ChecksumMismatchError(CorruptCheckpointError):
    """The data's checksum differs from the one recorded in the envelope."""


class SchemaError(CorruptCheckpointError):
    """The data does not match the schema of its version; the message names the field."""


class CheckpointIOError(CheckpointError):
    """The file could not be read, moved aside or written."""
