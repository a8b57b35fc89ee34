"""The claim spec files in the CDI dir: write one, remove one, list ours.

The CDI dir is shared with other vendors and watched by the container runtime, which loads every
``*.json`` and ``*.yaml`` file in it (not recursing into subdirectories). Writes are atomic
(`atomicfiles.write_bytes`): the temporary file ``.<name>.<random>.tmp`` never ends in ``.json``,
so the runtime never loads a half-written spec; it sees the finished file appear by rename.
Callers hold the node-wide ``flock`` (``serialize.lock``), so one claim's file has one writer.
Specs are not fsynced: a spec matters only while this boot's checkpoint does, and a reboot
discards both (the checkpoint of another boot is dropped, reconciliation removes the specs).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Sequence

import structlog

from dra_driver import atomicfiles
from dra_driver.cdi import errors, naming, spec

DEFAULT_CDI_DIR = pathlib.Path("/var/run/cdi")

log = structlog.get_logger(__name__)


def write_claim_spec(
    cdi_dir: pathlib.Path,
    claim_uid: str,
    devices: Sequence[spec.Device],
    common: spec.ContainerEdits = spec.NO_EDITS,
) -> list[str]:
    """Write (or replace) the claim's spec file; return the qualified IDs in device order.

    Creates `cdi_dir` if it is missing. Raises `errors.InvalidSpecError` before touching the disk
    if the spec is not valid CDI, `errors.SpecFileError` if the write fails (the previous file, if
    any, is then left as it was).
    """
    content = json.dumps(spec.render(claim_uid, devices, common), indent=2).encode() + b"\n"
    ids = [naming.qualified_id(device.name) for device in devices]
    path = cdi_dir / naming.spec_file_name(claim_uid)
    try:
        cdi_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomicfiles.write_bytes(path, content, mode=0o644, durable=False)
    except OSError as err:
        raise errors.SpecFileError(f"cannot write the CDI spec {path}: {err}") from err
    log.info("cdi.spec_written", path=str(path), cdi_ids=ids)  # the caller binds the claim
    return ids


def remove_claim_spec(cdi_dir: pathlib.Path, claim_uid: str) -> bool:
    """Remove the claim's spec file; False if there was none (idempotent)."""
    path = cdi_dir / naming.spec_file_name(claim_uid)
    try:
        removed = atomicfiles.remove(path, durable=False)
    except NotADirectoryError:
        return False  # the CDI dir is not a directory: no spec of ours can be in it
    except OSError as err:
        raise errors.SpecFileError(f"cannot remove the CDI spec {path}: {err}") from err
    if removed:
        log.info("cdi.spec_removed", path=str(path))
    return removed


def claim_uids_with_specs(cdi_dir: pathlib.Path) -> set[str]:
    """The claim UIDs that have a spec file of ours in `cdi_dir` (empty if it does not exist).

    Other vendors' files, other files of our vendor and our temporary files are ignored.
    """
    uids: set[str] = set()
    for entry in _entries(cdi_dir):
        uid = naming.claim_uid_of_file(entry.name)
        if uid is not None and not entry.is_dir():
            uids.add(uid)
    return uids


def remove_temp_files(cdi_dir: pathlib.Path) -> int:
    """Remove the temporary files that interrupted writes of our specs left; return how many.

    Such files are never loaded by a CDI runtime, but they would pile up across plugin restarts
    (the CDI dir is usually a tmpfs, emptied only by a reboot). Call under the node-wide lock, at
    start-up, so that no write of ours is in flight.
    """
    removed = 0
    for entry in _entries(cdi_dir):
        if naming.is_spec_temp_file(entry.name) and not entry.is_dir():
            path = cdi_dir / entry.name
            try:
                gone = atomicfiles.remove(path)
            except OSError as err:
                raise errors.SpecFileError(f"cannot remove {path}: {err}") from err
            if gone:
                removed += 1
                log.info("cdi.temp_file_removed", path=str(path))
    return removed


def _entries(cdi_dir: pathlib.Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(cdi_dir) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
    except OSError as err:
        raise errors.SpecFileError(f"cannot list the CDI dir {cdi_dir}: {err}") from err
