"""Reading and writing the node's checkpoint under ``<plugin dir>``.

Two layouts: ``checkpoint.json``, one file holding every claim (``v1``; `load` and `save` read and
write it), and ``checkpoint.d/<claim UID>.json``, a file per claim (`v2`). `NodeCheckpoint` is how
the prepare flow uses them: it reads either, writes the one it is given (`Layout`), keeps the
checkpoint in memory between calls and writes only the claims that changed. The caller holds the
node-wide lock (``serialize.lock``, `atomicfiles.NodeLock`) around a load-change-save, so two
plugin instances never interleave. Writes are atomic: a crash leaves the old or the new content of
each file, never a torn one.

`load` never fails on the content of the file. A file from an earlier boot describes claims whose
containers, MIG instances and daemons are gone with the reboot: it yields an empty checkpoint. A
file that cannot be decoded is renamed aside (``checkpoint.json.corrupt-<unix time>``, kept as
evidence) and also yields an empty checkpoint; the caller's start-up reconciliation then removes
what no checkpoint entry owns (CDI spec files, MIG instances). A claim's file in the directory is
treated the same way, claim by claim.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
import secrets
import time
from collections.abc import Callable

import structlog

from dra_driver import atomicfiles
from dra_driver.checkpoint import errors, model, scheme, v2

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
    """Replace the ``v1`` checkpoint at `path` atomically and durably (mode 0600)."""
    try:
        atomicfiles.write_bytes(path, scheme.encode(checkpoint), mode=0o600)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot write the checkpoint {path}: {err}") from err
    log.debug("checkpoint.saved", path=str(path), claims=len(checkpoint.claims))


class Layout(enum.Enum):
    """Where a `NodeCheckpoint` writes the checkpoint (it reads either)."""

    FILE = "v1"
    """One file, ``checkpoint.json`` (`scheme`, ``v1``): what every release reads."""
    DIRECTORY = "v2"
    """A file per claim under ``checkpoint.d/`` (`v2`): a save writes what changed. Releases
    from 0.2.0 on read it; the default from 0.3.0 on, held back beside an earlier release
    (`NodeCheckpoint`)."""


HELD = b"held"
"""The last word of the stamps of a writer that holds back the directory layout."""


def nobody_else() -> bool:
    """`NodeCheckpoint`'s ``others_serving`` for a process that is alone on its node."""
    return False


class NodeCheckpoint:
    """The node's checkpoint as one process sees it, in either layout; every call under `lock`.

    It keeps the checkpoint in memory and reads the disk again only when another process wrote
    it since: every save here leaves a new stamp in the lock file (`atomicfiles.NodeLock`), and a
    plugin of a release that leaves no stamp (before 0.2.0) writes only ``checkpoint.json``,
    whose `atomicfiles.identity` changes with every write. So a load costs one ``pread`` and one
    ``stat`` unless something changed.

    Both layouts are read, so that plugins writing different ones can hand the node to each other
    during a rolling update, either way: ``checkpoint.json``, when it exists, holds the whole
    checkpoint (the directory's files, if any, are left-overs); otherwise the directory does. A
    save in one layout writes everything it holds first, then removes the other layout's files,
    so a crash in between leaves ``checkpoint.json`` holding the same claims as the directory.

    A plugin before 0.2.0 reads only ``checkpoint.json``: while one may be serving the node beside
    this process (a rolling update straight from it), the directory layout is held back and
    ``checkpoint.json`` written instead. Such a plugin leaves no stamp, so a load that finds
    ``checkpoint.json`` and no stamp, or finds it replaced while the stamp stayed the same, holds
    the layout back if another plugin instance serves the node then (`others_serving`: their
    sockets answer). So does a stamp of a writer holding it back (its last word is `HELD`): a
    plugin that restarts while the earlier release still runs holds it again. The hold ends at
    a load that finds no other instance serving.

    Saves are atomic (each file written beside and renamed into place) but not synced to the disk
    (no ``fsync``): a process that dies leaves the kernel with what it wrote, and a power loss
    or a kernel crash reboots the node, after which the checkpoint describes an earlier boot and
    is discarded whole (`load`). Syncing would buy nothing and costs a millisecond per save.
    """

    def __init__(
        self,
        plugin_dir: pathlib.Path,
        *,
        boot_id: str,
        lock: atomicfiles.NodeLock,
        layout: Layout = Layout.DIRECTORY,
        others_serving: Callable[[], bool] = nobody_else,
    ) -> None:
        self.file = plugin_dir / FILE_NAME
        self.directory = plugin_dir / v2.DIRECTORY
        self.boot_id = boot_id
        self.layout = layout
        """The layout this writer is set to."""
        self.held: str | None = None
        """Why the directory layout is held back now (``checkpoint.json`` written instead)."""
        self._others_serving = others_serving
        self.checkpoint = model.Checkpoint(boot_id=boot_id)
        """What this process last read or wrote (for metrics, which take no lock)."""
        self._lock = lock
        self._seen: tuple[bytes, atomicfiles.Identity | None] | None = None
        """The stamp and the file's identity when last read or written; None: read again."""
        self._in_file = False
        """The last load read ``checkpoint.json`` (the directory, if any, is stale)."""
        self._on_disk: set[str] = set()
        """Names of the directory's claim files as of the last load or save."""
        self._stale: set[str] = set()
        """Those of `_on_disk` that hold no claim of the checkpoint (another boot's): removed by
        the next save in the directory."""
        self._encoder = scheme.Encoder()
        self._token = secrets.token_hex(8)
        self._saves = 0

    def load(self) -> model.Checkpoint:
        """The checkpoint as it is on disk now, read again only if another process wrote it."""
        seen = (self._lock.read_stamp(), _identity(self.file))
        if self.held is None and seen != self._seen:
            self.held = self._reason_to_hold(*seen)
            if self.held is not None:
                log.warning("checkpoint.layout_held", layout=self.layout.value, held=self.held)
        elif self.held is not None and not self._others_serving():
            log.info("checkpoint.layout_released", layout=self.layout.value, held=self.held)
            self.held = None
        if seen == self._seen:
            return self.checkpoint
        self._on_disk = self._claim_files()
        self._stale = set()
        if seen[1] is not None:
            self.checkpoint = load(self.file, boot_id=self.boot_id).checkpoint
            self._in_file = True
        else:
            self.checkpoint = self._load_directory()
            self._in_file = False
        self._seen = (seen[0], _identity(self.file))  # `load` may have set a corrupt file aside
        return self.checkpoint

    def save(self, checkpoint: model.Checkpoint) -> None:
        """Write `checkpoint` in `layout`, atomically; `errors.CheckpointIOError` if it fails
        (then the disk may hold the old or, per claim, the new state: the next load reads it)."""
        self._seen = None
        layout = self.writing
        if layout is Layout.FILE:
            self._save_file(checkpoint)
        else:
            self._save_directory(checkpoint)
        self.checkpoint = checkpoint.without_history()
        self._in_file = layout is Layout.FILE
        self._saves += 1
        stamp = f"{self._token} {self._saves}".encode()
        if self.held is not None:
            stamp += b" " + HELD
        try:
            self._lock.write_stamp(stamp)
        except OSError as err:  # saved, but other processes may not notice: they must re-read
            raise errors.CheckpointIOError(f"cannot stamp {self._lock.path}: {err}") from err
        self._seen = (stamp, _identity(self.file))
        log.debug("checkpoint.saved", layout=layout.value, claims=len(checkpoint.claims))

    @property
    def writing(self) -> Layout:
        """The layout a save writes now: `layout`, but while the directory is held back."""
        return Layout.FILE if self.held is not None else self.layout

    def _reason_to_hold(self, stamp: bytes, file: atomicfiles.Identity | None) -> str | None:
        """Why the directory layout must be held back now, if it must (the class docstring)."""
        if self.layout is Layout.FILE:
            return None
        replaced = self._seen is not None and self._seen[0] == stamp and self._seen[1] != file
        if file is not None and (not stamp or replaced):
            reason = "checkpoint.json was written by a plugin before 0.2.0"
        elif stamp.rsplit(b" ", 1)[-1] == HELD:
            reason = "another plugin instance holds the per-claim layout back"
        else:
            return None
        return reason if self._others_serving() else None

    def _save_file(self, checkpoint: model.Checkpoint) -> None:
        _write(self.file, self._encoder.encode(checkpoint))
        for name in sorted(self._on_disk):  # the file holds everything now
            _remove(self.directory / name)
            self._on_disk.discard(name)
        self._stale.clear()

    def _save_directory(self, checkpoint: model.Checkpoint) -> None:
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as err:
            raise errors.CheckpointIOError(f"cannot create {self.directory}: {err}") from err
        if self._in_file:  # taking the node over from checkpoint.json: write every claim
            before = model.Checkpoint(boot_id=self.boot_id)
            self._stale |= self._on_disk
        else:
            before = self.checkpoint
        changed = _changed(checkpoint, before)
        gone = []
        for uid in sorted(changed):
            name = v2.file_name(uid)
            claim = checkpoint.claims.get(uid)
            if claim is not None:
                _write(self.directory / name, v2.encode(self.boot_id, claim))
                self._on_disk.add(name)
                self._stale.discard(name)
            elif uid in before.claims:
                gone.append(name)
        for name in [*gone, *sorted(self._stale)]:
            _remove(self.directory / name)
            self._on_disk.discard(name)
            self._stale.discard(name)
        if self._in_file:  # the directory holds everything now
            _remove(self.file)

    def _claim_files(self) -> set[str]:
        try:
            return {name for name in os.listdir(self.directory) if v2.is_claim_file(name)}
        except FileNotFoundError:
            return set()
        except OSError as err:
            raise errors.CheckpointIOError(f"cannot list {self.directory}: {err}") from err

    def _load_directory(self) -> model.Checkpoint:
        """The claims of this boot in the directory; corrupt files set aside, other boots' left
        in `_on_disk` for the next save to remove."""
        claims: dict[model.ClaimUID, model.PreparedClaim] = {}
        other_boots = 0
        for name in sorted(self._on_disk):
            path = self.directory / name
            try:
                content = path.read_bytes()
            except FileNotFoundError:
                self._on_disk.discard(name)
                continue
            except OSError as err:
                raise errors.CheckpointIOError(f"cannot read {path}: {err}") from err
            try:
                boot_id, claim = v2.decode(content, name=name)
            except errors.CorruptCheckpointError as err:
                _set_aside(path, err, boot_id=self.boot_id)
                self._on_disk.discard(name)
                continue
            if boot_id == self.boot_id:
                claims[claim.uid] = claim
            else:
                other_boots += 1
                self._stale.add(name)
        if other_boots:
            log.warning(
                "checkpoint.other_boot", path=str(self.directory), dropped_claims=other_boots
            )
        return model.Checkpoint(boot_id=self.boot_id, claims=claims)


def _changed(checkpoint: model.Checkpoint, before: model.Checkpoint) -> set[model.ClaimUID]:
    """The claims of `checkpoint` and `before` that differ: from the history of `checkpoint`
    when it was made from `before` (the prepare flow's case), else by comparing every claim."""
    changed = checkpoint.changed_since(before)
    if changed is not None:
        return changed
    held = before.claims.get
    changed = {uid for uid, claim in checkpoint.claims.items() if held(uid) is not claim}
    return changed | (before.claims.keys() - checkpoint.claims.keys())


def read_node(
    plugin_dir: pathlib.Path, *, lock_path: pathlib.Path, boot_id: str
) -> model.Checkpoint:
    """The checkpoint under `plugin_dir`, in whichever layout it is, read as a plugin reads it,
    under the node-wide lock at `lock_path` (for tools and tests: nothing is written but a
    corrupt file set aside)."""
    lock = atomicfiles.NodeLock(lock_path)
    try:
        with lock:
            return NodeCheckpoint(plugin_dir, boot_id=boot_id, lock=lock).load()
    finally:
        lock.close()


def _write(path: pathlib.Path, content: bytes) -> None:
    """Replace `path` atomically, not durably (see `NodeCheckpoint`)."""
    try:
        atomicfiles.write_bytes(path, content, mode=0o600, durable=False)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot write the checkpoint {path}: {err}") from err


def _remove(path: pathlib.Path) -> None:
    try:
        atomicfiles.remove(path, durable=False)
    except OSError as err:
        raise errors.CheckpointIOError(f"cannot remove {path}: {err}") from err


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
