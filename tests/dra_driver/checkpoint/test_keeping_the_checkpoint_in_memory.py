"""`store.CheckpointFile`: the checkpoint kept in memory, the file read again only when replaced.

Covers: the incremental encoder writes byte for byte what `scheme.encode` writes, for any sequence
of checkpoints; a file saved by another writer (a second plugin instance) is read again, also when
it has the same size; an unchanged file is not decoded again; a file removed or set aside as
corrupt yields an empty checkpoint; a failed save makes the next load read the file.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dra_driver import atomicfiles
from dra_driver.checkpoint import errors, model, scheme, store
from tests.dra_driver.checkpoint import strategies

BOOT = "boot-1"


@given(st.lists(strategies.checkpoints(), min_size=1, max_size=4))
def test_the_encoder_writes_what_encode_writes(checkpoints: list[model.Checkpoint]) -> None:
    encoder = scheme.Encoder()
    for checkpoint in checkpoints:
        assert encoder.encode(checkpoint) == scheme.encode(checkpoint)


@given(strategies.checkpoints(), strategies.claims())
def test_the_encoder_follows_one_claim_changing(
    checkpoint: model.Checkpoint, claim: model.PreparedClaim
) -> None:
    encoder = scheme.Encoder()
    encoder.encode(checkpoint)
    changed = checkpoint.with_claim(claim)
    assert encoder.encode(changed) == scheme.encode(changed)
    removed = changed.without_claim(claim.uid)
    assert encoder.encode(removed) == scheme.encode(removed)


def _claim(uid: str, name: str = "c") -> model.PreparedClaim:
    device = model.PreparedDevice(
        request_names=("gpu",),
        pool="node-a",
        device="gpu-0",
        share_id=None,
        cdi_ids=(),
        gpu_uuid="GPU-1",
    )
    return model.PreparedClaim(
        uid=model.ClaimUID(uid),
        namespace="ns",
        name=name,
        state=model.PrepareState.COMPLETED,
        devices=(device,),
    )


def test_a_second_writer_is_seen(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    ours = store.CheckpointFile(path, boot_id=BOOT)
    theirs = store.CheckpointFile(path, boot_id=BOOT)
    ours.save(ours.load().with_claim(_claim("u1", name="aaaa")))
    # The same size, and most likely the same modification time: the inode tells them apart.
    theirs.save(theirs.load().with_claim(_claim("u1", name="bbbb")))
    assert ours.load().claims[model.ClaimUID("u1")].name == "bbbb"
    theirs.save(theirs.load().without_claim(model.ClaimUID("u1")))
    assert ours.load().claims == {}


def test_an_unchanged_file_is_not_decoded_again(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = store.CheckpointFile(tmp_path / store.FILE_NAME, boot_id=BOOT)
    file.save(file.load().with_claim(_claim("u1")))
    decoded: list[bytes] = []
    monkeypatch.setattr(scheme, "decode", decoded.append)
    assert set(file.load().claims) == {"u1"}
    assert set(file.load().claims) == {"u1"}
    assert decoded == []


def test_a_removed_or_corrupt_file_is_an_empty_checkpoint(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    file = store.CheckpointFile(path, boot_id=BOOT)
    file.save(file.load().with_claim(_claim("u1")))
    path.unlink()
    assert file.load().claims == {}
    file.save(file.load().with_claim(_claim("u2")))
    path.write_bytes(b"not json")
    assert file.load().claims == {}
    assert [p.name.startswith(f"{store.FILE_NAME}.corrupt-") for p in tmp_path.iterdir()] == [True]


def test_a_failed_save_reads_the_file_again(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / store.FILE_NAME
    file = store.CheckpointFile(path, boot_id=BOOT)
    file.save(file.load().with_claim(_claim("u1")))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(atomicfiles, "write_bytes", full)
    with pytest.raises(errors.CheckpointIOError, match="No space left"):
        file.save(file.load().with_claim(_claim("u2")))
    monkeypatch.undo()
    assert set(file.load().claims) == {"u1"}
