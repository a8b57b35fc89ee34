"""Strict decoding of v1alpha1 opaque configs: raw parameters in, a valid, normalized config out.

`decode` takes what ``opaque.parameters`` holds, as parsed JSON (a dict) or as JSON text, checks
``apiVersion`` and ``kind``, decodes the kind's fields, fills in defaults and validates the values
(`validate`). Strict decoding helps prevent mistakes: an unknown field (a typo, or a field of
another kind), a value of the wrong JSON type, or strategy settings under the wrong strategy are
errors, never silently ignored or defaulted. Every error is an `errors.ConfigError` whose path
starts at the root of the parameters (``sharing.mpsConfig.defaultActiveThreadPercentage``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from api import _jsonfields, errors, quantities
from api.v1alpha1 import register, sharing, types, validate

_MIG_NO_TIME_SLICING = (
    "not supported on MIG devices (time-slicing is a no-op on MIG); use strategy MPS"
)
_MPS_FIELDS = (
    "defaultActiveThreadPercentage",
    "defaultPinnedDeviceMemoryLimit",
    "defaultPerDevicePinnedMemoryLimit",
)


def decode(data: object) -> types.Config:
    """Decode and validate one config: a JSON object, or JSON text (`str` or `bytes`)."""
    if isinstance(data, str | bytes | bytearray):
        data = _jsonfields.loads(data)
    obj = _jsonfields.as_object(data, "")
    _jsonfields.as_choice(
        obj.get("apiVersion"), "apiVersion", [register.API_VERSION], what="apiVersion"
    )
    kind = _jsonfields.as_choice(obj.get("kind"), "kind", list(_SCHEME), what="kind")
    _jsonfields.check_fields(obj, {"apiVersion", "kind", "sharing"}, "")
    return _SCHEME[kind](obj)


def _gpu_config(obj: Mapping[str, object]) -> types.GpuConfig:
    raw = obj.get("sharing")
    config = types.GpuConfig(sharing=None if raw is None else _sharing(raw, mig=False))
    validate.validate_gpu_config(config)
    return config


def _mig_device_config(obj: Mapping[str, object]) -> types.MigDeviceConfig:
    raw = obj.get("sharing")
    decoded = None if raw is None else _sharing(raw, mig=True)
    assert not isinstance(decoded, sharing.TimeSlicingConfig)  # _sharing(mig=True) rejects it
    config = types.MigDeviceConfig(sharing=decoded)
    validate.validate_mig_device_config(config)
    return config


# The scheme: each kind of this version and its decoder.
_SCHEME: dict[str, Callable[[Mapping[str, object]], types.Config]] = {
    register.GPU_CONFIG: _gpu_config,
    register.MIG_DEVICE_CONFIG: _mig_device_config,
}


def _sharing(raw: object, *, mig: bool) -> sharing.Sharing:
    obj = _jsonfields.as_object(raw, "sharing")
    settings = {cls.json_field: cls for cls in (sharing.TimeSlicingConfig, sharing.MpsConfig)}
    _jsonfields.check_fields(obj, {"strategy", *settings}, "sharing")
    strategy = _jsonfields.as_enum(
        obj.get("strategy"), "sharing.strategy", sharing.SharingStrategy, what="strategy"
    )
    if mig and strategy is sharing.SharingStrategy.TIME_SLICING:
        raise errors.ConfigError(f"TimeSlicing is {_MIG_NO_TIME_SLICING}", "sharing.strategy")
    for field, cls in settings.items():
        if obj.get(field) is None or cls.strategy is strategy:
            continue
        if mig and cls is sharing.TimeSlicingConfig:
            raise errors.ConfigError(_MIG_NO_TIME_SLICING, f"sharing.{field}")
        raise errors.ConfigError(
            f"only allowed with strategy {cls.strategy.value}, got {strategy.value}",
            f"sharing.{field}",
        )
    if strategy is sharing.SharingStrategy.TIME_SLICING:
        return _time_slicing(obj.get("timeSlicingConfig"), "sharing.timeSlicingConfig")
    return _mps(obj.get("mpsConfig"), "sharing.mpsConfig")


def _time_slicing(raw: object, path: str) -> sharing.TimeSlicingConfig:
    obj = _jsonfields.as_object({} if raw is None else raw, path)
    _jsonfields.check_fields(obj, {"interval"}, path)
    interval = obj.get("interval")
    if interval is None:
        return sharing.TimeSlicingConfig()
    return sharing.TimeSlicingConfig(
        _jsonfields.as_enum(
            interval, f"{path}.interval", sharing.TimeSliceInterval, what="interval"
        )
    )


def _mps(raw: object, path: str) -> sharing.MpsConfig:
    obj = _jsonfields.as_object({} if raw is None else raw, path)
    _jsonfields.check_fields(obj, _MPS_FIELDS, path)
    percentage, limit, per_device = (obj.get(name) for name in _MPS_FIELDS)
    paths = [errors.join(path, name) for name in _MPS_FIELDS]
    limits = _jsonfields.as_object({} if per_device is None else per_device, paths[2])
    return sharing.MpsConfig(
        None if percentage is None else _jsonfields.as_int(percentage, paths[0]),
        None if limit is None else _bytes(limit, paths[1]),
        {key: _bytes(value, errors.item(paths[2], key)) for key, value in limits.items()},
    )


def _bytes(raw: object, path: str) -> int:
    with errors.prefixed(path):
        return quantities.parse_bytes(raw)
