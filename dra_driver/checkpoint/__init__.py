"""The node's record of prepared claims: what makes prepare idempotent and survives restarts.

The prepare flow writes a claim as ``PrepareStarted`` before touching the hardware and as
``PrepareCompleted`` once its CDI spec exists; unprepare drops it last. A restarted plugin, or a
second plugin instance during a rolling update (sharing the file under the caller's ``flock`` on
``serialize.lock``), reads it back to know what is prepared.

- `model`: the internal, version-free types (`Checkpoint`, `PreparedClaim`, `PreparedDevice`).
- `v1`: the ``v1`` on-disk schema (TypedDicts) and its conversion to and from the model.
- `scheme`: the envelope (kind, version, checksum) and the registry of versions; decoding picks the
  version the file names, encoding always writes the newest.
- `store`: file I/O: `load` (fresh / loaded / other boot / corrupt), `save`, `current_boot_id`, and
  `CheckpointFile`, the checkpoint kept in memory and read again only when the file was replaced.
- `errors`: what can go wrong, by what the caller should do.

It is our own versioned schema: never a serialized upstream or protobuf object.
"""

from dra_driver.checkpoint import errors, model, scheme, store, v1

__all__ = ["errors", "model", "scheme", "store", "v1"]
