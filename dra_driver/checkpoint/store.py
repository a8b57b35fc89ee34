"""Reading and writing ``<plugin dir>/checkpoint.json``.

`load` runs at start-up; `save` after every change. The caller holds the node-wide ``flock``
(``serialize.lock``) around a load-change-save, so two plugin instances never interleave. `save`
is atomic and durable: a crash leaves either the old or the new checkpoint, never a torn one.

`CheckpointFile` is how the prepare flow uses them: it keeps the checkpoint in memory and reads
the file again only when someone else replaced it since this process last read or wrote it (its
inode, size, modification or change time differ: every save is a new file renamed into place),
and it encodes only the claims that changed (`scheme.Encoder`). A second plugin instance's write
is therefore always seen, and a node with a thousand claims is not decoded on every call.

`load` never fails on the content of the file. A file from an earlier boot describes claims whose
containers, MIG instances and daemons are gone with the reboot: it yields an empty checkpoint. A
file that cannot be decoded is renamed aside (``checkpoint.json.corrupt-<unix time>``, kept as
evidence) and also yields an empty checkpoint; the caller's start-up reconciliation then removes
what no checkpoint entry owns (CDI spec files, MIG instances).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
import time

import structlog

from dra_driver import atomicfiles
from dra_driver.checkpoint import errors, model, scheme

FILE_NAME = "checkpoint.json"
BOOT_ID_PATH = pathlib.Path("/proc/sys/kernel/random/boot_id")

log = structlog.get_logger(__name__)


class LoadOutcome(enum.Enum):
    """What `load` found."""

    FRESH = "fresh"
    """No file: nothing was ever prepared on this node (or everything was set aside)."""
    LOADED = "loaded"
    """The file of this boot, decoded."""
    OTHER_BOOT = "other_boot"
    """The file of an earlier boot: the node rebooted, every claim in it is gone."""
    CORRUPT = "corrupt"
    """The file could not be decoded; it was renamed aside."""


@dataclasses.dataclass(frozen=True)
class LoadResult:
    checkpoint: model.Checkpoint
    """What to work from: always for the current boot, empty unless `outcome` is LOADED."""
    outcome: LoadOutcome
    dropped_claims: int = 0
    """OTHER_BOOT: how many claims the earlier boot's file held."""
    reason: str | None = None
    """CORRUPT: why the file could not be decoded."""
    moved_to: pathlib.Path | None = None
    """CORRUPT: where the file now is."""


def load(path: pathlib.Path, *, boot_id: str) -> LoadResult:
    """Read the checkpoint at `path` for the boot `boot_id` (see the module docstring).

    Raises `errors.CheckpointIOError` only if the file exists but cannot be read or moved aside.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        log.info("checkpoint.fresh", path=str(path))
        return LoadResult(model.Checkpoint(boot_id=boot_id), LoadOutcome.FRESH)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot read the checkpoint {path}: {err}") from err
    try:
        checkpoint = scheme.decode(content)
    except errors.CorruptCheckpointError as err:
        return _set_aside(path, err, boot_id=boot_id)
    if checkpoint.boot_id != boot_id:
        log.warning(
            "checkpoint.other_boot",
            path=str(path),
            file_boot_id=checkpoint.boot_id,
            boot_id=boot_id,
            dropped_claims=len(checkpoint.claims),
        )
        return LoadResult(
            model.Checkpoint(boot_id=boot_id),
            LoadOutcome.OTHER_BOOT,
            dropped_claims=len(checkpoint.claims),
        )
    log.info("checkpoint.loaded", path=str(path), claims=len(checkpoint.claims))
    return LoadResult(checkpoint, LoadOutcome.LOADED)


def save(path: pathlib.Path, checkpoint: model.Checkpoint) -> None:
    """Replace the checkpoint at `path` atomically and durably (mode 0600)."""
    try:
        atomicfiles.write_bytes(path, scheme.encode(checkpoint), mode=0o600)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot write the checkpoint {path}: {err}") from err
    log.debug("checkpoint.saved", path=str(path), claims=len(checkpoint.claims))


class CheckpointFile:
    """The checkpoint at `path` as one process sees it; every call under the caller's ``flock``."""

    def __init__(self, path: pathlib.Path, *, boot_id: str) -> None:
        self.path = path
        self.boot_id = boot_id
        self.checkpoint = model.Checkpoint(boot_id=boot_id)
        """What this process last read or wrote (for metrics, which take no lock)."""
        self._seen: atomicfiles.Identity | bool | None = False
        """The file's `atomicfiles.identity` when last read or written; False: read it again."""
        self._encoder = scheme.Encoder()

    def load(self) -> model.Checkpoint:
        """The checkpoint as it is on disk now, read again only if the file was replaced."""
        if self._seen is False or _identity(self.path) != self._seen:
            self.checkpoint = load(self.path, boot_id=self.boot_id).checkpoint
            self._seen = _identity(self.path)  # `load` may have set a corrupt file aside
        return self.checkpoint

    def save(self, checkpoint: model.Checkpoint) -> None:
        """Replace the file with `checkpoint`, atomically and durably (like `save`)."""
        self._seen = False  # if the write fails half-way, read the file again next time
        try:
            atomicfiles.write_bytes(self.path, self._encoder.encode(checkpoint), mode=0o600)
        except OSError as err:
            raise errors.CheckpointIOError(
                f"cannot write the checkpoint {self.path}: {err}"
            ) from err
        self.checkpoint = checkpoint
        self._seen = _identity(self.path)
        log.debug("checkpoint.saved", path=str(self.path), claims=len(checkpoint.claims))


def _identity(path: pathlib.Path) -> atomicfiles.Identity | None:
    try:
        return atomicfiles.identity(path)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot stat the checkpoint {path}: {err}") from err


def current_boot_id(path: pathlib.Path = BOOT_ID_PATH) -> str:
    """The kernel's boot ID: a new random UUID on every boot."""
    try:
        boot_id = path.read_text().strip()
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot read the boot ID from {path}: {err}") from err
    if not boot_id:
        raise errors.CheckpointIOError(f"the boot ID file {path} is empty")
    return boot_id


def _set_aside(
    path: pathlib.Path, err: errors.CorruptCheckpointError, *, boot_id: str
) -> LoadResult:
    """Rename the undecodable file at `path` to a name no other file has; log why."""
    stamp = int(time.time())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 0
    while target.exists():  # never overwrite earlier evidence
        serial += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    try:
        os.rename(path, target)
    except OSError as rename_err:
        raise errors.CheckpointIOError(
            f"cannot move the corrupt checkpoint {path} aside: {rename_err}"
        ) from rename_err
    log.error(
        "checkpoint.corrupt",
        path=str(path),
        moved_to=str(target),
        error=type(err).__name__,
        reason=str(err),
    )
    return LoadResult(
        model.Checkpoint(boot_id=boot_id), LoadOutcome.CORRUPT, reason=str(err), moved_to=target
    )
