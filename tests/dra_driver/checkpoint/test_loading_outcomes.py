"""What `store.load` does with each kind of file it can find, and how it reports it.

Covers: no file (fresh); this boot's file (loaded); an earlier boot's file (empty, the dropped
claims counted, the file left for the next save to replace); every kind of corruption (renamed
aside as evidence, an empty checkpoint, one error log line with the reason); two corruptions in the
same second keep both files; a file that cannot be read or moved aside raises; the boot ID.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
from typing import Any

import pytest
import structlog

from dra_driver.checkpoint import errors, model, scheme, store

BOOT = "6a1f0c2e-3b7d-4d3e-9d59-0f1a2b3c4d5e"
UID = model.ClaimUID("8c3f5a2e-1d4b-4f6a-9e7c-2b1a0d9e8f7c")


def _claim(uid: model.ClaimUID) -> model.PreparedClaim:
    device = model.PreparedDevice(
        request_names=("gpu",),
        pool="node-a",
        device="gpu-0",
        share_id=None,
        cdi_ids=(f"k8s.gpu.dra.dev/claim={uid}-gpu-0",),
        gpu_uuid="GPU-1",
    )
    return model.PreparedClaim(
        uid=uid, namespace="ns", name="c", state=model.PrepareState.COMPLETED, devices=(device,)
    )


def _saved(tmp_path: pathlib.Path, checkpoint: model.Checkpoint) -> pathlib.Path:
    path = tmp_path / store.FILE_NAME
    store.save(path, checkpoint)
    return path


def _envelope(data: Any, *, version: str = "v1", checksum: str | None = None) -> bytes:
    envelope = {
        "kind": "GpuDraCheckpoint",
        "version": version,
        "checksum": scheme.checksum(data) if checksum is None else checksum,
        "data": data,
    }
    return json.dumps(envelope).encode()


def _good_data() -> Any:
    content = scheme.encode(model.Checkpoint(boot_id=BOOT).with_claim(_claim(UID)))
    return json.loads(content)["data"]


def test_no_file_is_fresh(tmp_path: pathlib.Path) -> None:
    with structlog.testing.capture_logs() as logs:
        result = store.load(tmp_path / store.FILE_NAME, boot_id=BOOT)
    assert result == store.LoadResult(model.Checkpoint(boot_id=BOOT), store.LoadOutcome.FRESH)
    assert [log["event"] for log in logs] == ["checkpoint.fresh"]


def test_this_boots_file_is_loaded(tmp_path: pathlib.Path) -> None:
    checkpoint = model.Checkpoint(boot_id=BOOT).with_claim(_claim(UID))
    path = _saved(tmp_path, checkpoint)
    with structlog.testing.capture_logs() as logs:
        result = store.load(path, boot_id=BOOT)
    assert result == store.LoadResult(checkpoint, store.LoadOutcome.LOADED)
    assert logs == [
        {
            "event": "checkpoint.loaded",
            "log_level": "info",
            "path": str(path),
            "claims": 1,
        }
    ]


def test_an_earlier_boots_file_yields_an_empty_checkpoint(tmp_path: pathlib.Path) -> None:
    other = model.ClaimUID("11111111-2222-4333-8444-555555555555")
    before_reboot = model.Checkpoint(boot_id="earlier").with_claim(_claim(UID))
    path = _saved(tmp_path, before_reboot.with_claim(_claim(other)))

    with structlog.testing.capture_logs() as logs:
        result = store.load(path, boot_id=BOOT)

    assert result == store.LoadResult(
        model.Checkpoint(boot_id=BOOT), store.LoadOutcome.OTHER_BOOT, dropped_claims=2
    )
    assert logs == [
        {
            "event": "checkpoint.other_boot",
            "log_level": "warning",
            "path": str(path),
            "file_boot_id": "earlier",
            "boot_id": BOOT,
            "dropped_claims": 2,
        }
    ]
    assert path.exists()  # not evidence of anything: the next save replaces it


def _truncated() -> bytes:
    content = scheme.encode(model.Checkpoint(boot_id=BOOT).with_claim(_claim(UID)))
    return content[: len(content) // 2]


def _tampered() -> bytes:
    data = _good_data()
    checksum = scheme.checksum(data)
    data["claims"][UID]["devices"][0]["device"] = "gpu-1"
    return _envelope(data, checksum=checksum)


def _bad_schema() -> bytes:
    data = _good_data()
    data["claims"][UID]["devices"][0]["pool"] = 7
    return _envelope(data)


@pytest.mark.parametrize(
    ("content", "error", "reason"),
    [
        pytest.param(b"", "MalformedError", "not JSON", id="empty-file"),
        pytest.param(b'{"kind": ', "MalformedError", "not JSON", id="bad-json"),
        pytest.param(_truncated(), "MalformedError", "not JSON", id="truncated"),
        pytest.param(b"\x80\x81\x82", "MalformedError", "not JSON", id="not-utf8"),
        pytest.param(b"[]", "MalformedError", "not a GpuDraCheckpoint", id="not-an-object"),
        pytest.param(
            json.dumps({"kind": "Other", "version": "v1", "checksum": "", "data": {}}).encode(),
            "MalformedError",
            "not a GpuDraCheckpoint",
            id="other-kind",
        ),
        pytest.param(
            json.dumps({"kind": "GpuDraCheckpoint", "version": "v1", "checksum": "x"}).encode(),
            "MalformedError",
            "needs a version, a checksum and data",
            id="no-data",
        ),
        pytest.param(
            _envelope({"bootId": BOOT, "claims": {}}, version="v9"),
            "UnknownVersionError",
            "version 'v9' is not one of v1",
            id="unknown-version",
        ),
        pytest.param(_tampered(), "ChecksumMismatchError", "checksum is ", id="checksum-mismatch"),
        pytest.param(
            _envelope({"bootId": BOOT, "claims": {}}, checksum="0" * 64),
            "ChecksumMismatchError",
            "the file records 0000",
            id="wrong-checksum",
        ),
        pytest.param(
            _bad_schema(),
            "SchemaError",
            f"data.claims['{UID}'].devices[0].pool: expected a string, got int",
            id="schema-error",
        ),
    ],
)
def test_a_corrupt_file_is_set_aside(
    tmp_path: pathlib.Path, content: bytes, error: str, reason: str
) -> None:
    path = tmp_path / store.FILE_NAME
    path.write_bytes(content)

    with structlog.testing.capture_logs() as logs:
        result = store.load(path, boot_id=BOOT)

    assert result.outcome is store.LoadOutcome.CORRUPT
    assert result.checkpoint == model.Checkpoint(boot_id=BOOT)
    assert result.reason is not None
    assert reason in result.reason
    assert result.moved_to is not None
    assert re.fullmatch(r"checkpoint\.json\.corrupt-[0-9]+", result.moved_to.name)
    assert result.moved_to.read_bytes() == content  # kept as evidence
    assert not path.exists()
    assert logs == [
        {
            "event": "checkpoint.corrupt",
            "log_level": "error",
            "path": str(path),
            "moved_to": str(result.moved_to),
            "error": error,
            "reason": result.reason,
        }
    ]


def test_two_corruptions_in_one_second_keep_both_files(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_750_000_000.5)
    path = tmp_path / store.FILE_NAME
    moved = []
    for content in (b"first", b"second"):
        path.write_bytes(content)
        with structlog.testing.capture_logs():
            moved.append(store.load(path, boot_id=BOOT).moved_to)
    assert moved == [
        tmp_path / "checkpoint.json.corrupt-1750000000",
        tmp_path / "checkpoint.json.corrupt-1750000000-1",
    ]
    assert [p.read_bytes() for p in moved if p is not None] == [b"first", b"second"]


def test_an_unreadable_file_raises(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    path.mkdir()
    with pytest.raises(errors.CheckpointIOError, match="cannot read the checkpoint") as caught:
        store.load(path, boot_id=BOOT)
    assert isinstance(caught.value.__cause__, OSError)


def test_a_corrupt_file_that_cannot_be_moved_aside_raises(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / store.FILE_NAME
    path.write_bytes(b"garbage")

    def refuse(*_: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "rename", refuse)
    with pytest.raises(errors.CheckpointIOError, match="cannot move the corrupt checkpoint"):
        store.load(path, boot_id=BOOT)
    assert path.read_bytes() == b"garbage"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(f"{BOOT}\n", BOOT, id="trailing-newline"),
        pytest.param(BOOT, BOOT, id="bare"),
    ],
)
def test_boot_id_is_read_from_the_kernel_file(
    tmp_path: pathlib.Path, content: str, expected: str
) -> None:
    path = tmp_path / "boot_id"
    path.write_text(content)
    assert store.current_boot_id(path) == expected


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_a_missing_or_empty_boot_id_raises(tmp_path: pathlib.Path, content: str | None) -> None:
    path = tmp_path / "boot_id"
    if content is not None:
        path.write_text(content)
    with pytest.raises(errors.CheckpointIOError, match="boot ID"):
        store.current_boot_id(path)


@pytest.mark.skipif(not store.BOOT_ID_PATH.exists(), reason="no /proc boot_id (not Linux)")
def test_the_real_boot_id_is_a_uuid() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", store.current_boot_id())
