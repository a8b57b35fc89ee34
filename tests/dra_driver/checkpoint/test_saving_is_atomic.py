"""`store.save` replaces the checkpoint atomically: an interrupted save leaves the previous one.

Covers: the file's mode (0600, it names claims and namespaces); a save whose rename fails raises a
`CheckpointIOError` chaining the `OSError`, leaves the previous checkpoint loadable and unchanged,
and leaves no temporary file behind; a save into a missing directory raises.
"""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from dra_driver.checkpoint import errors, model, store

UID = model.ClaimUID("8c3f5a2e-1d4b-4f6a-9e7c-2b1a0d9e8f7c")
BEFORE = model.Checkpoint(boot_id="boot")
AFTER = BEFORE.with_claim(
    model.PreparedClaim(
        uid=UID, namespace="ns", name="c", state=model.PrepareState.STARTED, devices=()
    )
)


def test_the_file_is_private(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    store.save(path, BEFORE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_interrupted_save_leaves_the_previous_checkpoint(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / store.FILE_NAME
    store.save(path, BEFORE)
    previous = path.read_bytes()

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(errors.CheckpointIOError, match="No space left") as caught:
        store.save(path, AFTER)
    monkeypatch.undo()

    assert isinstance(caught.value.__cause__, OSError)
    assert path.read_bytes() == previous
    assert store.load(path, boot_id="boot").checkpoint == BEFORE
    assert os.listdir(tmp_path) == [store.FILE_NAME]  # no temporary file left


def test_saving_into_a_missing_directory_raises(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.CheckpointIOError, match="cannot write the checkpoint"):
        store.save(tmp_path / "missing" / store.FILE_NAME, BEFORE)
