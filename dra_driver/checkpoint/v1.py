"""Checkpoint schema ``v1``: the JSON under the envelope's ``data`` key, and its conversion.

    {"bootId": "...",
     "claims": {"<claim UID>": {"namespace": "...", "name": "...", "state": "PrepareCompleted",
                                "devices": [{"requestNames": ["gpu"], "pool": "node-a",
                                             "device": "gpu-0", "shareId": null,
                                             "cdiIds": ["k8s.gpu.dra.dev/claim=<uid>-gpu-0"],
                                             "gpuUuid": "GPU-...", "migUuid": null,
                                             "migGpuInstanceId": null, "adminAccess": false,
                                             "consumedCapacity": {}, "isolation": {}}]}}}

`encode` writes every field. `decode` is strict about the types of the fields it knows and lenient
about the rest: unknown keys are ignored (a newer build may add some) and the optional fields may
be missing.

``isolation`` is a map of strings; each part of `model.Isolation` has its keys:

    "mig": "static" | "dynamic"                  MigOrigin
    "timeslice": "DEFAULT" | "SHORT" | ...       hardware.TimesliceInterval, by name
    "memoryLimit": "<bytes>", "cores": "<percent>"   Quota (both or neither)
    "mpsDaemon": "<id>", "mpsPipe": "<dir>",     MpsAttachment (daemon and pipe, or neither)
    "mpsShm": "<dir>" (optional), "mpsExclusive": "true" (absent: false)

A known key with a bad value, or half a part, is a `errors.SchemaError`; any other key is kept
verbatim in `model.Isolation.unknown` and written back. Once released, this schema never changes: a change is a new version beside this one
(see `scheme`), and the fixture test keeps old files loading.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypedDict

from dra_driver import hardware
from dra_driver.checkpoint import errors, model

VERSION = "v1"


class DeviceV1(TypedDict):
    requestNames: list[str]
    pool: str
    device: str
    shareId: str | None
    cdiIds: list[str]
    gpuUuid: str
    migUuid: str | None
    migGpuInstanceId: int | None
    adminAccess: bool
    consumedCapacity: dict[str, str]
    isolation: dict[str, str]


class ClaimV1(TypedDict):
    namespace: str
    name: str
    state: str
    devices: list[DeviceV1]


class DataV1(TypedDict):
    bootId: str
    claims: dict[str, ClaimV1]


def encode(checkpoint: model.Checkpoint) -> DataV1:
    """The ``v1`` data of `checkpoint`, claims ordered by UID."""
    return {
        "bootId": checkpoint.boot_id,
        "claims": {uid: encode_claim(checkpoint.claims[uid]) for uid in sorted(checkpoint.claims)},
    }


def decode(data: Any) -> model.Checkpoint:
    """The checkpoint held by ``v1`` `data`; `errors.SchemaError` names the first bad field."""
    obj = _object(data, "data")
    claims = _object(obj.get("claims"), "data.claims")
    return model.Checkpoint(
        boot_id=_str(obj, "bootId", "data"),
        claims={
            model.ClaimUID(uid): decode_claim(model.ClaimUID(uid), raw, f"data.claims[{uid!r}]")
            for uid, raw in claims.items()
        },
    )


class Fragments:
    """`encode`, as JSON text, with each claim's JSON kept from one call to the next.

    `data_json` gives the same bytes as ``json.dumps`` of `encode`'s value, compact (as the file
    holds it) and canonical (sorted keys, as the checksum covers it), but encodes only the claims
    that are new or changed since the last call: a claim is the same if it is the same object
    (`model.Checkpoint.with_claim` keeps the others) or an equal one. So a change to one claim
    costs one claim's encoding, not the whole node's.
    """

    def __init__(self) -> None:
        self._claims: dict[model.ClaimUID, tuple[model.PreparedClaim, bytes, bytes]] = {}
        """By UID: the claim, and ``"<uid>":<claim>`` compact and canonical."""

    def data_json(self, checkpoint: model.Checkpoint) -> tuple[bytes, bytes]:
        """The ``v1`` data of `checkpoint` as compact JSON and as canonical JSON."""
        cached, fresh = self._claims, {}
        for uid, claim in checkpoint.claims.items():
            entry = cached.get(uid)
            if entry is None or (entry[0] is not claim and entry[0] != claim):
                value, key = encode_claim(claim), _compact(uid) + b":"
                entry = (claim, key + _compact(value), key + _compact(value, sort_keys=True))
            fresh[uid] = entry
        self._claims = fresh
        entries = [fresh[uid] for uid in sorted(fresh)]
        head = b'{"bootId":' + _compact(checkpoint.boot_id) + b',"claims":{'
        written = b",".join([entry[1] for entry in entries])
        canonical = b",".join([entry[2] for entry in entries])
        return head + written + b"}}", head + canonical + b"}}"


def _compact(value: Any, *, sort_keys: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, sort_keys=sort_keys).encode()


def encode_claim(claim: model.PreparedClaim) -> ClaimV1:
    return {
        "namespace": claim.namespace,
        "name": claim.name,
        "state": claim.state.value,
        "devices": [_encode_device(device) for device in claim.devices],
    }


def _encode_device(device: model.PreparedDevice) -> DeviceV1:
    return {
        "requestNames": list(device.request_names),
        "pool": device.pool,
        "device": device.device,
        "shareId": device.share_id,
        "cdiIds": list(device.cdi_ids),
        "gpuUuid": device.gpu_uuid,
        "migUuid": device.mig_uuid,
        "migGpuInstanceId": device.mig_gpu_instance_id,
        "adminAccess": device.admin_access,
        "consumedCapacity": dict(sorted(device.consumed_capacity.items())),
        "isolation": _encode_isolation(device.isolation),
    }


def decode_claim(uid: model.ClaimUID, raw: Any, where: str) -> model.PreparedClaim:
    obj = _object(raw, where)
    state = _str(obj, "state", where)
    try:
        prepare_state = model.PrepareState(state)
    except ValueError:
        raise errors.SchemaError(f"{where}.state: unknown state {state!r}") from None
    devices = _list(obj.get("devices"), f"{where}.devices")
    return model.PreparedClaim(
        uid=uid,
        namespace=_str(obj, "namespace", where),
        name=_str(obj, "name", where),
        state=prepare_state,
        devices=tuple(
            _decode_device(device, f"{where}.devices[{i}]") for i, device in enumerate(devices)
        ),
    )


def _decode_device(raw: Any, where: str) -> model.PreparedDevice:
    obj = _object(raw, where)
    return model.PreparedDevice(
        request_names=_strs(obj, "requestNames", where),
        pool=_str(obj, "pool", where),
        device=_str(obj, "device", where),
        share_id=_optional_str(obj, "shareId", where),
        cdi_ids=_strs(obj, "cdiIds", where),
        gpu_uuid=_str(obj, "gpuUuid", where),
        mig_uuid=_optional_str(obj, "migUuid", where),
        mig_gpu_instance_id=_optional_int(obj, "migGpuInstanceId", where),
        admin_access=_bool(obj, "adminAccess", where),
        consumed_capacity=_str_map(obj, "consumedCapacity", where),
        isolation=_decode_isolation(_str_map(obj, "isolation", where), f"{where}.isolation"),
    )


# Isolation: typed parts to and from the string map (keys as the first release wrote them).

_MIG = "mig"
_TIME_SLICE = "timeslice"
_MEMORY_LIMIT = "memoryLimit"
_CORES = "cores"
_MPS_DAEMON = "mpsDaemon"
_MPS_PIPE = "mpsPipe"
_MPS_SHM = "mpsShm"
_MPS_EXCLUSIVE = "mpsExclusive"
_TRUE = "true"
_ISOLATION_KEYS = frozenset(
    (_MIG, _TIME_SLICE, _MEMORY_LIMIT, _CORES, _MPS_DAEMON, _MPS_PIPE, _MPS_SHM, _MPS_EXCLUSIVE)
)
_DECIMAL = re.compile(r"[0-9]+")
_NOTHING_UNKNOWN: model.FrozenMap[str, str] = model.FrozenMap()


def _encode_isolation(isolation: model.Isolation) -> dict[str, str]:
    if isolation is model.NO_ISOLATION:
        return {}
    entries = dict(isolation.unknown)
    if clash := sorted(entries.keys() & _ISOLATION_KEYS):
        raise ValueError(f"isolation.unknown holds keys of typed parts: {clash}")
    if isolation.mig is not None:
        entries[_MIG] = isolation.mig.value
    if isolation.time_slice is not None:
        entries[_TIME_SLICE] = isolation.time_slice.name
    if (quota := isolation.quota) is not None:
        entries[_MEMORY_LIMIT] = str(quota.memory_bytes)
        entries[_CORES] = str(quota.cores)
    if (mps := isolation.mps) is not None:
        entries[_MPS_DAEMON] = mps.daemon
        entries[_MPS_PIPE] = mps.pipe_dir
        if mps.shm_dir is not None:
            entries[_MPS_SHM] = mps.shm_dir
        if mps.exclusive:
            entries[_MPS_EXCLUSIVE] = _TRUE
    return dict(sorted(entries.items()))


def _decode_isolation(entries: dict[str, str], where: str) -> model.Isolation:
    if not entries:
        return model.NO_ISOLATION
    return model.Isolation(
        mig=_mig_origin(entries, where),
        time_slice=_time_slice(entries, where),
        quota=_quota(entries, where),
        mps=_mps(entries, where),
        unknown=_unknown(entries),
    )


def _unknown(entries: dict[str, str]) -> model.FrozenMap[str, str]:
    if entries.keys() <= _ISOLATION_KEYS:
        return _NOTHING_UNKNOWN
    return model.FrozenMap((k, v) for k, v in entries.items() if k not in _ISOLATION_KEYS)


def _mig_origin(entries: dict[str, str], where: str) -> model.MigOrigin | None:
    value = entries.get(_MIG)
    if value is None:
        return None
    try:
        return model.MigOrigin(value)
    except ValueError:
        raise errors.SchemaError(f"{where}.{_MIG}: unknown MIG origin {value!r}") from None


def _time_slice(entries: dict[str, str], where: str) -> hardware.TimesliceInterval | None:
    value = entries.get(_TIME_SLICE)
    if value is None:
        return None
    try:
        return hardware.TimesliceInterval[value]
    except KeyError:
        raise errors.SchemaError(f"{where}.{_TIME_SLICE}: unknown interval {value!r}") from None


def _quota(entries: dict[str, str], where: str) -> model.Quota | None:
    if _MEMORY_LIMIT not in entries and _CORES not in entries:
        return None
    _require(entries, _MEMORY_LIMIT, _CORES, where)
    _require(entries, _CORES, _MEMORY_LIMIT, where)
    return model.Quota(
        memory_bytes=_decimal(entries, _MEMORY_LIMIT, where), cores=_decimal(entries, _CORES, where)
    )


def _mps(entries: dict[str, str], where: str) -> model.MpsAttachment | None:
    if _MPS_DAEMON not in entries:
        for key in (_MPS_PIPE, _MPS_SHM, _MPS_EXCLUSIVE):
            _require(entries, key, _MPS_DAEMON, where)
        return None
    _require(entries, _MPS_DAEMON, _MPS_PIPE, where)
    exclusive = entries.get(_MPS_EXCLUSIVE)
    if exclusive not in (None, _TRUE):
        raise errors.SchemaError(f"{where}.{_MPS_EXCLUSIVE}: expected 'true', got {exclusive!r}")
    return model.MpsAttachment(
        daemon=entries[_MPS_DAEMON],
        pipe_dir=entries[_MPS_PIPE],
        shm_dir=entries.get(_MPS_SHM),
        exclusive=exclusive == _TRUE,
    )


def _require(entries: dict[str, str], key: str, needed: str, where: str) -> None:
    """`key` comes only with `needed` (the two halves of one part)."""
    if key in entries and needed not in entries:
        raise errors.SchemaError(f"{where}: {key} without {needed}")


def _decimal(entries: dict[str, str], key: str, where: str) -> int:
    value = entries[key]
    try:
        if _DECIMAL.fullmatch(value):
            return int(value)
    except ValueError:  # more digits than Python converts
        pass
    raise errors.SchemaError(f"{where}.{key}: expected a decimal integer, got {value!r}")


# Field readers: each checks one JSON type and names the field in its error.


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.SchemaError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise errors.SchemaError(f"{where}: expected an array, got {_kind(value)}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise errors.SchemaError(f"{where}.{key}: expected a string, got {_kind(value)}")
    return value


def _optional_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key, where)


def _optional_int(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.SchemaError(f"{where}.{key}: expected an integer, got {_kind(value)}")
    return value


def _bool(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise errors.SchemaError(f"{where}.{key}: expected a boolean, got {_kind(value)}")
    return value


def _strs(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(obj.get(key), f"{where}.{key}")
    if not all(isinstance(item, str) for item in items):
        raise errors.SchemaError(f"{where}.{key}: expected an array of strings")
    return tuple(items)


def _str_map(obj: dict[str, Any], key: str, where: str) -> dict[str, str]:
    items = _object(obj.get(key, {}), f"{where}.{key}")
    if not all(isinstance(value, str) for value in items.values()):
        raise errors.SchemaError(f"{where}.{key}: expected an object of strings")
    return items


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
