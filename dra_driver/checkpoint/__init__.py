"""The node's record of prepared claims: what makes prepare idempotent and survives restarts.

The prepare flow writes a claim as ``PrepareStarted`` before touching the hardware and as
``PrepareCompleted`` once its CDI spec exists; unprepare drops it last. A restarted plugin, or a
second plugin instance during a rolling update (sharing the file under the caller's ``flock`` on
``serialize.lock``), reads it back to know what is prepared.

- `model`: the internal, version-free types (`Checkpoint`, `PreparedClaim`, `PreparedDevice`).
- `v1`: the ``v1`` on-disk schema (TypedDicts) and its conversion to and from the model.
- `scheme`: the envelope (kind, version, checksum) and the registry of versions of
  ``checkpoint.json``; decoding picks the version the file names, encoding writes the newest.
- `v2`: the per-claim layout, ``checkpoint.d/<claim UID>.json`` (a claim as ``v1`` has it).
- `store`: file I/O: `load` (fresh / loaded / other boot / corrupt), `save`, `current_boot_id`, and
  `NodeCheckpoint`, the checkpoint in either layout, kept in memory and read again only when
  another process wrote it.
- `errors`: what can go wrong, by what the caller should do.

It is our own versioned schema: never a serialized upstream or protobuf object.
"""

from dra_driver.checkpoint import errors, model, scheme, store, v1, v2

__all__ = ["errors", "model", "scheme", "store", "v1", "v2"]
