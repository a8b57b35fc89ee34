"""Spec files in the CDI dir: written atomically, removed idempotently, and ours listed.

Covers: write, list, remove round trip (content equals the rendered spec, IDs in device order);
the CDI dir created when missing; the file's mode; a rewrite replaces; removing twice, or from a
missing dir; listing ignores other vendors', YAML and temporary files, directories and a missing
dir; a failed write leaves the previous spec and no temporary file; an invalid spec touches nothing;
the temporary file's name is one the CDI library never loads (its extension is neither ``.json`` nor
``.yaml``); leftover temporary files of ours removed, nobody else's; errors chained from `OSError`.
"""

from __future__ import annotations

import json
import os
import pathlib
import stat

import pytest
import structlog

from dra_driver.cdi import errors, naming, spec, writing

UID_A = "4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7"
UID_B = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def _devices(uid: str, *pool_devices: str) -> list[spec.Device]:
    return [
        spec.Device(
            name=naming.device_name(uid, device),
            edits=spec.ContainerEdits(device_nodes=(spec.DeviceNode(path=f"/dev/{device}"),)),
        )
        for device in pool_devices
    ]


def test_write_list_remove_round_trip(tmp_path: pathlib.Path) -> None:
    devices_a = _devices(UID_A, "gpu-0", "gpu-1")
    with structlog.testing.capture_logs() as logs:
        ids = writing.write_claim_spec(tmp_path, UID_A, devices_a)
    writing.write_claim_spec(tmp_path, UID_B, _devices(UID_B, "gpu-2"))

    assert ids == [
        f"k8s.gpu.dra.dev/claim={UID_A}-gpu-0",
        f"k8s.gpu.dra.dev/claim={UID_A}-gpu-1",
    ]
    path = tmp_path / f"k8s.gpu.dra.dev-claim_{UID_A}.json"
    assert json.loads(path.read_text()) == spec.render(UID_A, devices_a)
    assert logs == [
        {
            "event": "cdi.spec_written",
            "log_level": "info",
            "path": str(path),  # the claim is bound by the prepare flow (test_preparing)
            "cdi_ids": ids,
        }
    ]
    assert writing.claim_uids_with_specs(tmp_path) == {UID_A, UID_B}

    assert writing.remove_claim_spec(tmp_path, UID_A) is True
    assert writing.claim_uids_with_specs(tmp_path) == {UID_B}
    assert writing.remove_claim_spec(tmp_path, UID_A) is False  # idempotent


def test_the_cdi_dir_is_created_and_the_file_is_world_readable(tmp_path: pathlib.Path) -> None:
    cdi_dir = tmp_path / "var" / "run" / "cdi"
    writing.write_claim_spec(cdi_dir, UID_A, _devices(UID_A, "gpu-0"))
    path = cdi_dir / naming.spec_file_name(UID_A)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_rewrite_replaces_the_spec(tmp_path: pathlib.Path) -> None:
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-0"))
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-3"))
    content = json.loads((tmp_path / naming.spec_file_name(UID_A)).read_text())
    assert [device["name"] for device in content["devices"]] == [f"{UID_A}-gpu-3"]


def test_removing_from_a_missing_dir_is_a_no_op(tmp_path: pathlib.Path) -> None:
    assert writing.remove_claim_spec(tmp_path / "missing", UID_A) is False


def test_listing_ignores_everything_but_our_spec_files(tmp_path: pathlib.Path) -> None:
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-0"))
    for name in (
        f"k8s.gpu.nvidia.com-claim_{UID_B}.json",
        f"k8s.gpu.dra.dev-claim_{UID_B}.yaml",
        f".k8s.gpu.dra.dev-claim_{UID_B}.json.abc123.tmp",
        "vendor.json",
    ):
        (tmp_path / name).write_text("{}")
    (tmp_path / f"k8s.gpu.dra.dev-claim_{UID_B}.json").mkdir()
    assert writing.claim_uids_with_specs(tmp_path) == {UID_A}
    assert writing.claim_uids_with_specs(tmp_path / "missing") == set()


def test_a_failed_write_leaves_the_previous_spec(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-0"))
    path = tmp_path / naming.spec_file_name(UID_A)
    previous = path.read_bytes()

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(errors.SpecFileError, match="No space left") as caught:
        writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-1"))
    monkeypatch.undo()

    assert isinstance(caught.value.__cause__, OSError)
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == [path.name]


def test_an_invalid_spec_touches_nothing(tmp_path: pathlib.Path) -> None:
    cdi_dir = tmp_path / "cdi"
    with pytest.raises(errors.InvalidSpecError):
        writing.write_claim_spec(cdi_dir, UID_A, [])
    assert not cdi_dir.exists()


def test_the_temporary_file_is_never_loaded_by_cdi(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: str) -> None:
        renamed.append(os.path.basename(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-0"))

    [temp_name] = renamed
    # The CDI library's scanSpecDirs and its fsnotify watch only look at these two extensions.
    assert os.path.splitext(temp_name)[1] not in (".json", ".yaml")
    assert naming.claim_uid_of_file(temp_name) is None
    assert naming.is_spec_temp_file(temp_name)


def test_leftover_temporary_files_of_ours_are_removed(tmp_path: pathlib.Path) -> None:
    writing.write_claim_spec(tmp_path, UID_A, _devices(UID_A, "gpu-0"))
    ours = tmp_path / f".k8s.gpu.dra.dev-claim_{UID_B}.json.k2j4_x.tmp"
    theirs = tmp_path / f".k8s.gpu.nvidia.com-claim_{UID_B}.json.k2j4_x.tmp"
    ours.write_text("{")
    theirs.write_text("{")

    with structlog.testing.capture_logs() as logs:
        assert writing.remove_temp_files(tmp_path) == 1

    assert not ours.exists()
    assert theirs.exists()
    assert (tmp_path / naming.spec_file_name(UID_A)).exists()
    assert logs == [{"event": "cdi.temp_file_removed", "log_level": "info", "path": str(ours)}]
    assert writing.remove_temp_files(tmp_path / "missing") == 0


def test_file_errors_are_translated(tmp_path: pathlib.Path) -> None:
    (tmp_path / naming.spec_file_name(UID_A)).mkdir()
    with pytest.raises(errors.SpecFileError, match="cannot remove the CDI spec") as caught:
        writing.remove_claim_spec(tmp_path, UID_A)
    assert isinstance(caught.value.__cause__, OSError)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(errors.SpecFileError, match="cannot list the CDI dir"):
        writing.claim_uids_with_specs(not_a_dir)
    with pytest.raises(errors.SpecFileError, match="cannot write the CDI spec"):
        writing.write_claim_spec(not_a_dir, UID_A, _devices(UID_A, "gpu-0"))
