"""Names in CDI: our kind, the spec file of a claim, device names and fully qualified IDs.

Device names carry the claim UID, so no two claims ever share one (the kubelet requires that):
``<claimUID>-<device>``, and for a share of a multi-allocatable device
``<claimUID>-<device>-<first 8 characters of the shareID>``, so that two shares of one device in one
claim never collide. The rules are those of the CDI Go library (``pkg/parser``): a device name is
ASCII letters, digits, ``-``, ``_``, ``.`` and ``:``, and starts and ends with a letter or digit.
"""

from __future__ import annotations

import re

from dra_driver.cdi import errors

VENDOR = "k8s.gpu.dra.dev"
CLASS = "claim"
KIND = f"{VENDOR}/{CLASS}"
SHARE_ID_CHARS = 8

# The name of a transient spec, as the CDI library's GenerateTransientSpecName makes it.
_SPEC_FILE_PREFIX = f"{VENDOR}-{CLASS}_"
_SPEC_FILE_SUFFIX = ".json"

_DEVICE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?")


def validate_device_name(name: str) -> str:
    """`name` if CDI accepts it as a device name; else `errors.InvalidNameError`."""
    if not _DEVICE_NAME.fullmatch(name):
        raise errors.InvalidNameError(
            f"invalid CDI device name {name!r}: use ASCII letters, digits, '-', '_', '.' and ':', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_claim_uid(claim_uid: str) -> str:
    """`claim_uid` if it can be part of a device name and of a file name; else an error."""
    if not _DEVICE_NAME.fullmatch(claim_uid):
        raise errors.InvalidNameError(f"invalid claim UID {claim_uid!r} for CDI names")
    return claim_uid


def device_name(claim_uid: str, device: str, share_id: str | None = None) -> str:
    """The CDI device name of `device` (a pool device name, e.g. ``gpu-0``) in a claim."""
    name = f"{validate_claim_uid(claim_uid)}-{device}"
    if share_id is not None:
        name += f"-{share_id[:SHARE_ID_CHARS]}"
    return validate_device_name(name)


def qualified_id(name: str) -> str:
    """The fully qualified CDI device ID of our device `name`, as returned to the kubelet."""
    return f"{KIND}={validate_device_name(name)}"


def spec_file_name(claim_uid: str) -> str:
    """``k8s.gpu.dra.dev-claim_<claimUID>.json``."""
    return f"{_SPEC_FILE_PREFIX}{validate_claim_uid(claim_uid)}{_SPEC_FILE_SUFFIX}"


def claim_uid_of_file(file_name: str) -> str | None:
    """The claim UID of our spec file named `file_name`; None for any other file."""
    if not (file_name.startswith(_SPEC_FILE_PREFIX) and file_name.endswith(_SPEC_FILE_SUFFIX)):
        return None
    uid = file_name[len(_SPEC_FILE_PREFIX) : -len(_SPEC_FILE_SUFFIX)]
    return uid if _DEVICE_NAME.fullmatch(uid) else None


def is_spec_temp_file(file_name: str) -> bool:
    """Whether `file_name` is a temporary file left by an interrupted write of our spec file.

    `atomicfiles.write_bytes` names its temporary file ``.<name>.<random>.tmp``; the CDI library
    only loads ``*.json`` and ``*.yaml``, so such a file is never read as a spec.
    """
    return (
        file_name.startswith(f".{_SPEC_FILE_PREFIX}")
        and file_name.endswith(".tmp")
        and f"{_SPEC_FILE_SUFFIX}." in file_name
    )
