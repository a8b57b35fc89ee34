"""Any checkpoint comes back equal from the file (a fuzzed round trip, like the example driver's).

Covers: encode/decode through the envelope, and save/load through a real file, for random
checkpoints with unicode text, empty and absent optional fields, and any number of claims.
"""

from __future__ import annotations

import pathlib
import tempfile

from hypothesis import given, settings

from dra_driver.checkpoint import model, scheme, store
from tests.dra_driver.checkpoint import strategies


@given(strategies.checkpoints())
def test_envelope_round_trip(checkpoint: model.Checkpoint) -> None:
    assert scheme.decode(scheme.encode(checkpoint)) == checkpoint


@settings(max_examples=30)  # each example fsyncs; the envelope test above covers the variety
@given(strategies.checkpoints())
def test_file_round_trip(checkpoint: model.Checkpoint) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / store.FILE_NAME
        store.save(path, checkpoint)
        result = store.load(path, boot_id=checkpoint.boot_id)
    assert result.outcome is store.LoadOutcome.LOADED
    assert result.checkpoint == checkpoint


@given(strategies.checkpoints())
def test_encoding_is_deterministic(checkpoint: model.Checkpoint) -> None:
    # Claims are written in UID order, whatever order they were added in.
    reversed_order = model.Checkpoint(
        boot_id=checkpoint.boot_id, claims=dict(list(checkpoint.claims.items())[::-1])
    )
    assert scheme.encode(reversed_order) == scheme.encode(checkpoint)
