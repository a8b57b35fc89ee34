"""Checkpoint schema ``v2``: one file per claim, ``<plugin dir>/checkpoint.d/<claim UID>.json``.

    {"kind": "GpuDraCheckpointClaim", "version": "v2", "checksum": "<sha256 hex>",
     "data": {"bootId": "...", "uid": "<claim UID>", "claim": <a v1 claim>}}

``checksum`` covers the canonical JSON of ``data``, as in the ``v1`` envelope (`scheme.checksum`);
``claim`` is exactly a claim of ``v1`` (`v1.encode_claim`), so the two versions describe a claim
the same way and differ only in where it is kept. ``uid`` repeats the file's name, so that a file
copied or renamed by hand is caught.

Why a file per claim: a ``v1`` file holds every claim, so each save rewrites them all (half a
megabyte at a thousand claims, twice per prepare); here a save writes the claims that changed and
removes those that went. Once released, this schema never changes (see `scheme`).
"""

from __future__ import annotations

import re
from typing import TypedDict

from dra_driver.checkpoint import errors, model, scheme, v1

VERSION = "v2"
KIND = "GpuDraCheckpointClaim"
DIRECTORY = "checkpoint.d"
SUFFIX = ".json"

_FILE_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
"""Claim UIDs that can name a file (Kubernetes UIDs are lower-case hex and dashes)."""


class DataV2(TypedDict):
    bootId: str
    uid: str
    claim: v1.ClaimV1


def file_name(uid: model.ClaimUID) -> str:
    """The name of the claim's file; `errors.CheckpointIOError` if the UID cannot name one."""
    if not _FILE_UID.fullmatch(uid):
        raise errors.CheckpointIOError(f"the claim UID {uid!r} cannot name a checkpoint file")
    return uid + SUFFIX


def encode(boot_id: str, claim: model.PreparedClaim) -> bytes:
    """The content of `claim`'s file."""
    data: DataV2 = {"bootId": boot_id, "uid": claim.uid, "claim": v1.encode_claim(claim)}
    return scheme.wrap(data, kind=KIND, version=VERSION)


def decode(content: bytes, *, name: str) -> tuple[str, model.PreparedClaim]:
    """The boot ID and the claim in the file `name` holding `content`.

    Raises an `errors.CorruptCheckpointError` naming what is wrong.
    """
    _, data = scheme.unwrap(content, kind=KIND, versions=(VERSION,), where=name)
    if not isinstance(data, dict):
        raise errors.SchemaError(f"{name}: data is not an object")
    boot_id, uid = data.get("bootId"), data.get("uid")
    if not isinstance(boot_id, str) or not isinstance(uid, str):
        raise errors.SchemaError(f"{name}: data needs a bootId and a uid (strings)")
    if name != uid + SUFFIX:
        raise errors.SchemaError(f"{name}: holds the claim {uid!r}, not the one it is named after")
    claim = v1.decode_claim(model.ClaimUID(uid), data.get("claim"), f"{name}: data.claim")
    return boot_id, claim


def is_claim_file(name: str) -> bool:
    """Whether `name` in the directory is a claim's file (not a temp file or one set aside)."""
    return name.endswith(SUFFIX) and not name.startswith(".")
