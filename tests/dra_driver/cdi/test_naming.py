"""CDI names: device names carry the claim UID, shares their shareID, and only CDI's characters.

Covers: device names of a full GPU, a MIG device and shares (two shares of one device differ);
qualified IDs; names and claim UIDs refused (slash, space, non-ASCII, bad first or last character,
empty); the spec file name and recognising our files among others (other vendors, YAML, temporary
files, backups).
"""

from __future__ import annotations

import pytest

from dra_driver.cdi import errors, naming
from tests.dra_driver.cdi import cdirules

UID = "4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7"


@pytest.mark.parametrize(
    ("device", "share_id", "expected"),
    [
        pytest.param("gpu-0", None, f"{UID}-gpu-0", id="full-gpu"),
        pytest.param("gpu-0-mig-1g5gb-3", None, f"{UID}-gpu-0-mig-1g5gb-3", id="mig"),
        pytest.param(
            "gpu-0-shared",
            "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            f"{UID}-gpu-0-shared-a1b2c3d4",
            id="share",
        ),
        pytest.param("gpu-0-shared", "7", f"{UID}-gpu-0-shared-7", id="short-share-id"),
        pytest.param("gpu-0-share-3", None, f"{UID}-gpu-0-share-3", id="compat-share"),
    ],
)
def test_device_names(device: str, share_id: str | None, expected: str) -> None:
    name = naming.device_name(UID, device, share_id)
    assert name == expected
    assert cdirules.device_name_ok(name)


def test_two_shares_of_one_device_get_distinct_names() -> None:
    first = naming.device_name(UID, "gpu-0-shared", "0f6d3a6e-0000-4000-8000-000000000001")
    second = naming.device_name(UID, "gpu-0-shared", "9c2e7b14-0000-4000-8000-000000000002")
    assert first != second


def test_qualified_id() -> None:
    assert naming.qualified_id(f"{UID}-gpu-0") == f"k8s.gpu.dra.dev/claim={UID}-gpu-0"


@pytest.mark.parametrize(
    ("claim_uid", "device", "share_id"),
    [
        pytest.param(UID, "gpu/0", None, id="slash"),
        pytest.param(UID, "gpu 0", None, id="space"),
        pytest.param(UID, "gpü-0", None, id="non-ascii"),
        pytest.param(UID, "gpu-٣", None, id="non-ascii-digit"),
        pytest.param(UID, "gpu-0-", None, id="trailing-dash"),
        pytest.param(UID, "gpu=0", None, id="equals"),
        pytest.param(UID, "gpu-0-shared", "", id="empty-share-id"),
        pytest.param(UID, "gpu-0-shared", "ab/cd", id="slash-in-share-id"),
        pytest.param("", "gpu-0", None, id="empty-uid"),
        pytest.param("a/b", "gpu-0", None, id="slash-in-uid"),
        pytest.param("-abc", "gpu-0", None, id="uid-starts-with-dash"),
        pytest.param("abc\n", "gpu-0", None, id="uid-with-newline"),
    ],
)
def test_invalid_names_are_refused(claim_uid: str, device: str, share_id: str | None) -> None:
    with pytest.raises(errors.InvalidNameError):
        naming.device_name(claim_uid, device, share_id)


@pytest.mark.parametrize("name", ["", "-gpu", "gpu.", "a b", "k8s.gpu.dra.dev/claim=x"])
def test_qualified_id_refuses_invalid_names(name: str) -> None:
    with pytest.raises(errors.InvalidNameError, match="invalid CDI device name"):
        naming.qualified_id(name)


def test_spec_file_name() -> None:
    assert naming.spec_file_name(UID) == f"k8s.gpu.dra.dev-claim_{UID}.json"
    with pytest.raises(errors.InvalidNameError):
        naming.spec_file_name("../etc")


@pytest.mark.parametrize(
    ("file_name", "claim_uid"),
    [
        pytest.param(f"k8s.gpu.dra.dev-claim_{UID}.json", UID, id="ours"),
        pytest.param(f"k8s.gpu.nvidia.com-claim_{UID}.json", None, id="nvidia"),
        pytest.param(f"k8s.gpu.dra.dev-claim_{UID}.yaml", None, id="yaml"),
        pytest.param(f".k8s.gpu.dra.dev-claim_{UID}.json.k2j4_x.tmp", None, id="temp-file"),
        pytest.param(f"k8s.gpu.dra.dev-claim_{UID}.json.bak", None, id="backup"),
        pytest.param("k8s.gpu.dra.dev-claim_.json", None, id="no-uid"),
        pytest.param("k8s.gpu.dra.dev-claim_a b.json", None, id="bad-uid"),
        pytest.param("k8s.gpu.dra.dev-common.json", None, id="other-class"),
    ],
)
def test_recognising_our_spec_files(file_name: str, claim_uid: str | None) -> None:
    assert naming.claim_uid_of_file(file_name) == claim_uid


@pytest.mark.parametrize(
    ("file_name", "is_temp"),
    [
        pytest.param(f".k8s.gpu.dra.dev-claim_{UID}.json.k2j4_x.tmp", True, id="ours"),
        pytest.param(f"k8s.gpu.dra.dev-claim_{UID}.json", False, id="spec"),
        pytest.param(f".k8s.gpu.nvidia.com-claim_{UID}.json.k2j4_x.tmp", False, id="nvidia"),
        pytest.param(".checkpoint.json.k2j4_x.tmp", False, id="checkpoint"),
    ],
)
def test_recognising_our_temporary_files(file_name: str, is_temp: bool) -> None:
    assert naming.is_spec_temp_file(file_name) is is_temp
