"""The checkpoint file's envelope and the registry of schema versions.

    {"kind": "GpuDraCheckpoint", "version": "v1", "checksum": "<sha256 hex>", "data": {...}}

``checksum`` is the SHA-256 of the canonical JSON of ``data`` (`canonical_json`), so a torn or
hand-edited file is detected, while the envelope itself stays readable by any future version.
`decode` picks the decoder named by ``version``; `encode` always writes `LATEST`.

Adding ``v2``: write ``v2.py`` beside ``v1.py`` (its own TypedDicts, ``encode`` and ``decode``
to and from `model`), register it in `VERSIONS` and point `LATEST` at it. Keep ``v1``'s decoder,
and keep the fixture test of ``v1`` passing. Mind rolling updates: the old plugin pod reads what
the new one writes, and it cannot read ``v2`` (it would set the file aside as corrupt and start
empty), so a release must be able to read ``v2`` before a later release starts writing it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from dra_driver.checkpoint import errors, model, v1

KIND = "GpuDraCheckpoint"


@dataclasses.dataclass(frozen=True)
class Version:
    """One on-disk schema: its name and its conversions to and from the model."""

    name: str
    encode: Callable[[model.Checkpoint], Mapping[str, Any]]
    decode: Callable[[Any], model.Checkpoint]


VERSIONS: Mapping[str, Version] = {
    v1.VERSION: Version(name=v1.VERSION, encode=v1.encode, decode=v1.decode),
}
LATEST = VERSIONS[v1.VERSION]


def canonical_json(data: Any) -> bytes:
    """The bytes the checksum covers: sorted keys, no whitespace, ASCII only."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def checksum(data: Any) -> str:
    return hashlib.sha256(canonical_json(data)).hexdigest()


def encode(checkpoint: model.Checkpoint) -> bytes:
    """The file content for `checkpoint`, in the `LATEST` version.

    Compact, not indented: the indenting encoder is pure Python and several times slower, and the
    file is rewritten twice per prepare (``python -m json.tool`` shows it to people).
    """
    return wrap(LATEST.encode(checkpoint), kind=KIND, version=LATEST.name)


def wrap(data: Any, *, kind: str, version: str) -> bytes:
    """`data` in an envelope of `kind` and `version` with its checksum: a file's content (what
    `unwrap` reads)."""
    envelope = {"kind": kind, "version": version, "checksum": checksum(data), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


class Encoder:
    """`encode` for one writer that saves one checkpoint after another (the prepare flow).

    Byte for byte what `encode` writes, but each claim's JSON is kept between calls
    (`v1.Fragments`), so saving a node with a thousand claims after one of them changed encodes one
    claim; what remains per save is the checksum and the copy of the bytes. It encodes ``v1``:
    moving `LATEST` on means giving the new version fragments of its own.
    """

    def __init__(self) -> None:
        self._fragments = v1.Fragments()

    def encode(self, checkpoint: model.Checkpoint) -> bytes:
        written, canonical = self._fragments.data_json(checkpoint)
        digest = hashlib.sha256(canonical).hexdigest()
        envelope = {"kind": KIND, "version": v1.VERSION, "checksum": digest}
        head = json.dumps(envelope, separators=(",", ":"), ensure_ascii=True)[:-1].encode()
        return head + b',"data":' + written + b"}\n"


def decode(content: bytes) -> model.Checkpoint:
    """The checkpoint in `content`; raises an `errors.CorruptCheckpointError` if it is not one."""
    name, data = unwrap(content, kind=KIND, versions=VERSIONS)
    return VERSIONS[name].decode(data)


def unwrap(
    content: bytes, *, kind: str, versions: Collection[str], where: str = ""
) -> tuple[str, Any]:
    """The version and the data of the envelope of `kind` in `content`, checksum verified.

    Raises an `errors.CorruptCheckpointError` (its message starting with `where`, if given): not
    JSON, not such an envelope, a version not in `versions`, a checksum that does not match.
    """
    at = f"{where}: " if where else ""
    try:
        envelope = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise errors.MalformedError(f"{at}not JSON: {err}") from err
    if not isinstance(envelope, dict) or envelope.get("kind") != kind:
        raise errors.MalformedError(f"{at}not a {kind} envelope")
    name, recorded, data = envelope.get("version"), envelope.get("checksum"), envelope.get("data")
    if not isinstance(name, str) or not isinstance(recorded, str) or "data" not in envelope:
        raise errors.MalformedError(f"{at}the envelope needs a version, a checksum and data")
    if name not in versions:
        raise errors.UnknownVersionError(
            f"{at}version {name!r} is not one of {', '.join(sorted(versions))}"
        )
    actual = checksum(data)
    if actual != recorded:
        raise errors.ChecksumMismatchError(f"{at}checksum is {actual}, the file records {recorded}")
    return name, data
