"""`store.NodeCheckpoint`: the checkpoint kept in memory, read again only when another wrote it.

Covers: the incremental encoder writes byte for byte what `scheme.encode` writes, for any sequence
of checkpoints; a checkpoint saved by another writer (a second plugin instance, in either layout,
or a plugin of a release before the stamp) is read again, also when it has the same size; an
unchanged checkpoint is not decoded again; a directory save writes only what changed; a file
removed or set aside as corrupt yields an empty checkpoint, a corrupt claim file loses that claim
only, claim files of another boot are dropped; a failed save makes the next load read the disk;
the node is handed over between the layouts both ways.
"""

from __future__ import annotations

import gc
import os
import pathlib
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dra_driver import atomicfiles
from dra_driver.checkpoint import errors, model, scheme, store, v2
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


def _node(directory: pathlib.Path, layout: store.Layout) -> store.NodeCheckpoint:
    """A plugin instance's view: its own open lock file, as a second process would have."""
    lock = atomicfiles.NodeLock(directory / "serialize.lock")
    return store.NodeCheckpoint(directory, boot_id=BOOT, lock=lock, layout=layout)


LAYOUTS = [store.Layout.FILE, store.Layout.DIRECTORY]


@pytest.mark.parametrize("theirs_layout", LAYOUTS)
@pytest.mark.parametrize("ours_layout", LAYOUTS)
def test_a_second_writer_is_seen(
    tmp_path: pathlib.Path, ours_layout: store.Layout, theirs_layout: store.Layout
) -> None:
    ours, theirs = _node(tmp_path, ours_layout), _node(tmp_path, theirs_layout)
    ours.save(ours.load().with_claim(_claim("u1", name="aaaa")))
    # The same size, and most likely the same modification time: the stamp tells them apart.
    theirs.save(theirs.load().with_claim(_claim("u1", name="bbbb")))
    assert ours.load().claims[model.ClaimUID("u1")].name == "bbbb"
    theirs.save(theirs.load().without_claim(model.ClaimUID("u1")))
    assert ours.load().claims == {}


def test_a_writer_of_an_earlier_release_is_seen(tmp_path: pathlib.Path) -> None:
    """A plugin before 0.2.0 leaves no stamp; it only ever replaces ``checkpoint.json``."""
    ours = _node(tmp_path, store.Layout.DIRECTORY)
    ours.save(ours.load().with_claim(_claim("u1")))
    earlier = ours.load().with_claim(_claim("u2"))
    store.save(tmp_path / store.FILE_NAME, earlier)  # what the earlier release does
    assert set(ours.load().claims) == {"u1", "u2"}
    ours.save(ours.load().without_claim(model.ClaimUID("u1")))
    assert not (tmp_path / store.FILE_NAME).exists()  # handed back to the directory
    assert sorted(p.name for p in ours.directory.iterdir()) == ["u2.json"]
    assert ours.held is None  # nobody else serves the node: no reason to hold the layout back


def _held(node: store.NodeCheckpoint) -> str | None:
    """Why `node` holds the directory layout back now (a call: it changes with every load)."""
    return node.held


def _serving(
    directory: pathlib.Path, others: list[bool], layout: store.Layout = store.Layout.DIRECTORY
) -> store.NodeCheckpoint:
    """A plugin instance that sees another serving the node while ``others[0]`` is true."""
    lock = atomicfiles.NodeLock(directory / "serialize.lock")
    return store.NodeCheckpoint(
        directory, boot_id=BOOT, lock=lock, layout=layout, others_serving=lambda: others[0]
    )


def _earlier_release_saves(
    directory: pathlib.Path, change: Callable[[model.Checkpoint], model.Checkpoint]
) -> None:
    """What a plugin before 0.2.0 does: read ``checkpoint.json`` alone, change it, write it
    whole, leave no stamp."""
    path = directory / store.FILE_NAME
    store.save(path, change(store.load(path, boot_id=BOOT).checkpoint))


def _claim_files(node: store.NodeCheckpoint) -> list[str]:
    return sorted(p.name for p in node.directory.glob("*.json"))


def test_the_directory_is_held_back_while_a_plugin_before_0_2_0_serves(
    tmp_path: pathlib.Path,
) -> None:
    """A rolling update straight from a release before 0.2.0: the new plugin writes what the
    old one reads until the old one is gone, also across a restart of the new one."""
    _earlier_release_saves(tmp_path, lambda c: c.with_claim(_claim("u1")))
    others = [True]
    ours = _serving(tmp_path, others)
    ours.save(ours.load().with_claim(_claim("u2")))
    assert _held(ours) is not None
    assert ours.writing is store.Layout.FILE
    assert _claim_files(ours) == []
    _earlier_release_saves(tmp_path, lambda c: c.with_claim(_claim("u3")))  # it sees u2
    assert set(ours.load().claims) == {"u1", "u2", "u3"}

    again = _serving(tmp_path, others)  # ours restarted while the old pod still serves
    again.save(again.load().without_claim(model.ClaimUID("u1")))
    assert _held(again) is not None
    assert set(store.load(tmp_path / store.FILE_NAME, boot_id=BOOT).checkpoint.claims) == {
        "u2",
        "u3",
    }

    others[0] = False  # the old pod is gone: the node moves to the directory
    again.save(again.load().with_claim(_claim("u4")))
    assert _held(again) is None
    assert not (tmp_path / store.FILE_NAME).exists()
    assert _claim_files(again) == ["u2.json", "u3.json", "u4.json"]
    assert _serving(tmp_path, [True]).load() == again.load()  # and no hold is left on disk
    assert _held(_serving(tmp_path, [True])) is None


def test_a_file_replaced_behind_the_stamp_holds_the_directory_back(
    tmp_path: pathlib.Path,
) -> None:
    """A plugin before 0.2.0 that starts beside ours (a roll back past 0.2.0) replaces
    ``checkpoint.json`` and leaves the stamp as it was: from then on ours writes that file."""
    ours = _serving(tmp_path, [True])
    ours.save(ours.load().with_claim(_claim("u1")))
    assert _held(ours) is None  # another instance of ours (stamped) is no reason
    _earlier_release_saves(tmp_path, lambda c: c.with_claim(_claim("u2")))
    ours.save(ours.load().with_claim(_claim("u3")))
    assert _held(ours) is not None
    assert "u3" in store.load(tmp_path / store.FILE_NAME, boot_id=BOOT).checkpoint.claims


def test_a_writer_set_to_the_file_never_holds(tmp_path: pathlib.Path) -> None:
    _earlier_release_saves(tmp_path, lambda c: c.with_claim(_claim("u1")))
    ours = _serving(tmp_path, [True], layout=store.Layout.FILE)
    ours.save(ours.load().with_claim(_claim("u2")))
    assert _held(ours) is None
    assert not (tmp_path / "serialize.lock").read_bytes().rstrip().endswith(store.HELD)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_unchanged_checkpoint_is_not_decoded_again(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, layout: store.Layout
) -> None:
    node = _node(tmp_path, layout)
    node.save(node.load().with_claim(_claim("u1")))
    decoded: list[bytes] = []
    monkeypatch.setattr(scheme, "decode", decoded.append)
    monkeypatch.setattr(v2, "decode", lambda content, name: decoded.append(content))
    assert set(node.load().claims) == {"u1"}
    assert set(node.load().claims) == {"u1"}
    assert decoded == []


def test_a_directory_save_writes_only_the_claims_that_changed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = _node(tmp_path, store.Layout.DIRECTORY)
    node.save(node.load().with_claim(_claim("u1")).with_claim(_claim("u2")))
    written: list[str] = []
    write = atomicfiles.write_bytes

    def recording(path: pathlib.Path, data: bytes, **kwargs: Any) -> None:
        written.append(path.name)
        write(path, data, **kwargs)

    monkeypatch.setattr(atomicfiles, "write_bytes", recording)
    node.save(node.load().with_claim(_claim("u3")).without_claim(model.ClaimUID("u1")))
    assert written == ["u3.json"]
    assert sorted(p.name for p in node.directory.iterdir()) == ["u2.json", "u3.json"]


def test_a_directory_save_of_a_checkpoint_made_otherwise_compares_the_claims(
    tmp_path: pathlib.Path,
) -> None:
    """A checkpoint not made from the saved one by `with_claim`/`without_claim` (no history to
    follow) is saved by comparing every claim: the same files as the history would give."""
    node = _node(tmp_path, store.Layout.DIRECTORY)
    kept, gone = _claim("u1"), _claim("u2")
    node.save(node.load().with_claim(kept).with_claim(gone))
    fresh = _claim("u3")
    rebuilt = model.Checkpoint(boot_id=BOOT, claims={kept.uid: kept, fresh.uid: fresh})
    node.save(rebuilt)
    assert sorted(p.name for p in node.directory.iterdir()) == ["u1.json", "u3.json"]
    assert _node(tmp_path, store.Layout.DIRECTORY).load() == rebuilt


def test_a_writer_keeps_no_history_of_what_it_saved(tmp_path: pathlib.Path) -> None:
    """Each save forgets what the saved checkpoint was made from: a thousand prepares must not
    keep a thousand checkpoints alive."""
    node = _node(tmp_path, store.Layout.DIRECTORY)
    first = node.load().with_claim(_claim("u1"))
    node.save(first)
    second = node.load().with_claim(_claim("u2"))
    node.save(second)
    earlier = weakref.ref(first)
    del first
    gc.collect()
    assert earlier() is None
    assert node.load() == second


def test_a_removed_or_corrupt_file_is_an_empty_checkpoint(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    node = _node(tmp_path, store.Layout.FILE)
    node.save(node.load().with_claim(_claim("u1")))
    path.unlink()
    assert node.load().claims == {}
    node.save(node.load().with_claim(_claim("u2")))
    path.write_bytes(b"not json")
    assert node.load().claims == {}
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(store.FILE_NAME)]
    assert len(left) == 1
    assert left[0].startswith(f"{store.FILE_NAME}.corrupt-")


def test_a_corrupt_claim_file_loses_that_claim_only(tmp_path: pathlib.Path) -> None:
    node = _node(tmp_path, store.Layout.DIRECTORY)
    node.save(node.load().with_claim(_claim("u1")).with_claim(_claim("u2")))
    (node.directory / "u1.json").write_bytes(b'{"kind": "GpuDraCheckpointClaim"')
    reader = _node(tmp_path, store.Layout.DIRECTORY)
    assert set(reader.load().claims) == {"u2"}
    names = sorted(p.name for p in node.directory.iterdir())
    assert names[0].startswith("u1.json.corrupt-")
    assert names[1:] == ["u2.json"]


def test_claim_files_of_another_boot_are_dropped_and_removed(tmp_path: pathlib.Path) -> None:
    before = _node(tmp_path, store.Layout.DIRECTORY)
    before.save(before.load().with_claim(_claim("u1")))
    lock = atomicfiles.NodeLock(tmp_path / "serialize.lock")
    after = store.NodeCheckpoint(
        tmp_path, boot_id="boot-2", lock=lock, layout=store.Layout.DIRECTORY
    )
    assert after.load().claims == {}
    after.save(after.load().with_claim(_claim("u2")))
    assert sorted(p.name for p in after.directory.iterdir()) == ["u2.json"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_failed_save_reads_the_disk_again(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, layout: store.Layout
) -> None:
    node = _node(tmp_path, layout)
    node.save(node.load().with_claim(_claim("u1")))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(atomicfiles, "write_bytes", full)
    written = "checkpoint.json" if layout is store.Layout.FILE else "checkpoint.d/u2.json"
    with pytest.raises(errors.CheckpointIOError, match=f"{written}: .*No space left"):
        node.save(node.load().with_claim(_claim("u2")))
    monkeypatch.undo()
    assert set(node.load().claims) == {"u1"}


@pytest.mark.parametrize(
    ("first", "then"),
    [(store.Layout.FILE, store.Layout.DIRECTORY), (store.Layout.DIRECTORY, store.Layout.FILE)],
)
def test_the_node_is_handed_over_between_layouts(
    tmp_path: pathlib.Path, first: store.Layout, then: store.Layout
) -> None:
    """A rolling update either way: the new writer reads the old layout, writes its own, and
    removes the old one's files; the old writer, if it runs on, reads the new layout."""
    old, new = _node(tmp_path, first), _node(tmp_path, then)
    old.save(old.load().with_claim(_claim("u1")).with_claim(_claim("u2")))
    new.save(new.load().with_claim(_claim("u3")))
    assert set(old.load().claims) == {"u1", "u2", "u3"}
    assert (tmp_path / store.FILE_NAME).exists() is (then is store.Layout.FILE)
    on_disk = sorted(p.name for p in new.directory.iterdir()) if new.directory.exists() else []
    assert on_disk == ([] if then is store.Layout.FILE else ["u1.json", "u2.json", "u3.json"])
    old.save(old.load().without_claim(model.ClaimUID("u2")))
    assert set(new.load().claims) == {"u1", "u3"}
