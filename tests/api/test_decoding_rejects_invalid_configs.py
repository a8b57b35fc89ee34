"""Strict decoding rejects every invalid config with the exact field path and a precise message.

Covers, one case per error path of `v1alpha1.decoding` and `v1alpha1.validate`:
- input that is not a JSON object (bad JSON text, bad UTF-8, duplicate keys, NaN, arrays, null);
- ``apiVersion`` and ``kind``: missing, wrong JSON type, unsupported values (naming the supported);
- unknown fields at every level (typos, fields of other kinds or of the NVIDIA API);
- ``sharing``: strategy missing, unknown or miscased; settings under the wrong strategy;
  time-slicing on MIG devices;
- ``timeSlicingConfig.interval``: unknown values and wrong types;
- ``mpsConfig``: percentage type and range, quantities (type, syntax, fractions, sign, size,
  the 1Mi minimum), per-device keys and values, for both kinds.
"""

from __future__ import annotations

import pytest

from api import errors
from api.v1alpha1 import decoding, register

API = register.API_VERSION


def gpu(**fields: object) -> dict[str, object]:
    return {"apiVersion": API, "kind": "GpuConfig", **fields}


def mig(**fields: object) -> dict[str, object]:
    return {"apiVersion": API, "kind": "MigDeviceConfig", **fields}


def gpu_mps(**mps: object) -> dict[str, object]:
    return gpu(sharing={"strategy": "MPS", "mpsConfig": mps})


def mig_mps(**mps: object) -> dict[str, object]:
    return mig(sharing={"strategy": "MPS", "mpsConfig": mps})


MPS = "sharing.mpsConfig"
PCT = f"{MPS}.defaultActiveThreadPercentage"
PINNED = f"{MPS}.defaultPinnedDeviceMemoryLimit"
PER_DEVICE = f"{MPS}.defaultPerDevicePinnedMemoryLimit"

CASES = [
    # The document itself.
    pytest.param("{", "", "invalid JSON", id="json-syntax"),
    pytest.param(b"\xff{}", "", "invalid JSON", id="json-not-utf8"),
    pytest.param('{"kind": "GpuConfig", "kind": "X"}', "", 'duplicate field "kind"', id="json-dup"),
    pytest.param('{"a": NaN}', "", "NaN is not valid JSON", id="json-nan"),
    pytest.param("[]", "", "must be an object, got array", id="json-array"),
    pytest.param([], "", "must be an object, got array", id="list"),
    pytest.param(None, "", "must be an object, got null", id="null"),
    pytest.param(42, "", "must be an object, got integer", id="integer"),
    pytest.param({1: "x"}, "", "object keys must be strings", id="non-string-key"),
    # apiVersion and kind.
    pytest.param(
        {"kind": "GpuConfig"}, "apiVersion", f"required; supported: {API}", id="no-apiVersion"
    ),
    pytest.param(
        gpu(apiVersion=1), "apiVersion", "must be a string, got integer", id="apiVersion-int"
    ),
    pytest.param(
        gpu(apiVersion="resource.nvidia.com/v1beta1"),
        "apiVersion",
        f'unsupported apiVersion "resource.nvidia.com/v1beta1"; supported: {API}',
        id="apiVersion-nvidia",
    ),
    pytest.param(
        gpu(apiVersion="gpu.dra.dev/v1"), "apiVersion", "unsupported apiVersion", id="apiVersion-v1"
    ),
    pytest.param(
        {"apiVersion": API}, "kind", "required; supported: GpuConfig, MigDeviceConfig", id="no-kind"
    ),
    pytest.param(gpu(kind=None), "kind", "required", id="kind-null"),
    pytest.param(gpu(kind=["GpuConfig"]), "kind", "must be a string, got array", id="kind-array"),
    pytest.param(
        gpu(kind="VfioDeviceConfig"),
        "kind",
        'unsupported kind "VfioDeviceConfig"; supported: GpuConfig, MigDeviceConfig',
        id="kind-unknown",
    ),
    pytest.param(gpu(kind="gpuconfig"), "kind", "unsupported kind", id="kind-miscased"),
    # Unknown fields.
    pytest.param(
        gpu(metadata={}),
        "metadata",
        "unknown field; known fields: apiVersion, kind, sharing",
        id="top-unknown",
    ),
    pytest.param(gpu(Sharing={}), "Sharing", "unknown field", id="top-miscased"),
    pytest.param(
        gpu(sharing={"strategy": "MPS", "stratgy": "x"}),
        "sharing.stratgy",
        "unknown field",
        id="sharing-typo",
    ),
    pytest.param(
        gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"intervall": "Long"}}),
        "sharing.timeSlicingConfig.intervall",
        "unknown field; known fields: interval",
        id="time-slicing-typo",
    ),
    pytest.param(
        gpu_mps(multiUser=True), f"{MPS}.multiUser", "unknown field", id="mps-nvidia-field"
    ),
    pytest.param(mig_mps(extra=1), f"{MPS}.extra", "unknown field", id="mig-mps-unknown"),
    # sharing.
    pytest.param(
        gpu(sharing="MPS"), "sharing", "must be an object, got string", id="sharing-string"
    ),
    pytest.param(
        gpu(sharing={}),
        "sharing.strategy",
        "required; supported: TimeSlicing, MPS",
        id="no-strategy",
    ),
    pytest.param(
        gpu(sharing={"strategy": 1}),
        "sharing.strategy",
        "must be a string, got integer",
        id="strategy-int",
    ),
    pytest.param(
        gpu(sharing={"strategy": "SpacePartitioning"}),
        "sharing.strategy",
        'unsupported strategy "SpacePartitioning"; supported: TimeSlicing, MPS',
        id="strategy-unknown",
    ),
    pytest.param(
        gpu(sharing={"strategy": "mps"}),
        "sharing.strategy",
        "unsupported strategy",
        id="strategy-miscased",
    ),
    pytest.param(
        gpu(sharing={"strategy": "MPS", "timeSlicingConfig": {}}),
        "sharing.timeSlicingConfig",
        "only allowed with strategy TimeSlicing, got MPS",
        id="time-slicing-settings-with-mps",
    ),
    pytest.param(
        gpu(sharing={"strategy": "TimeSlicing", "mpsConfig": {}}),
        "sharing.mpsConfig",
        "only allowed with strategy MPS, got TimeSlicing",
        id="mps-settings-with-time-slicing",
    ),
    pytest.param(
        mig(sharing={"strategy": "TimeSlicing"}),
        "sharing.strategy",
        "TimeSlicing is not supported on MIG devices (time-slicing is a no-op on MIG)",
        id="mig-time-slicing",
    ),
    pytest.param(
        mig(sharing={"strategy": "MPS", "timeSlicingConfig": {"interval": "Long"}}),
        "sharing.timeSlicingConfig",
        "not supported on MIG devices",
        id="mig-time-slicing-settings",
    ),
    pytest.param(
        mig(sharing={"strategy": "Fabric"}),
        "sharing.strategy",
        "unsupported strategy",
        id="mig-strategy-unknown",
    ),
    # timeSlicingConfig.
    pytest.param(
        gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": "Long"}),
        "sharing.timeSlicingConfig",
        "must be an object, got string",
        id="time-slicing-string",
    ),
    pytest.param(
        gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "VeryLong"}}),
        "sharing.timeSlicingConfig.interval",
        'unsupported interval "VeryLong"; supported: Default, Short, Medium, Long',
        id="interval-unknown",
    ),
    pytest.param(
        gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": 3}}),
        "sharing.timeSlicingConfig.interval",
        "must be a string, got integer",
        id="interval-int",
    ),
    # mpsConfig.
    pytest.param(
        gpu(sharing={"strategy": "MPS", "mpsConfig": []}),
        MPS,
        "must be an object, got array",
        id="mps-array",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage="50"),
        PCT,
        "must be an integer, got string",
        id="pct-string",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage=True),
        PCT,
        "must be an integer, got boolean",
        id="pct-bool",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage=50.0),
        PCT,
        "must be an integer, got number",
        id="pct-float",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage=0),
        PCT,
        "must be between 1 and 100, got 0",
        id="pct-zero",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage=101),
        PCT,
        "must be between 1 and 100, got 101",
        id="pct-101",
    ),
    pytest.param(
        gpu_mps(defaultActiveThreadPercentage=-1),
        PCT,
        "must be between 1 and 100",
        id="pct-negative",
    ),
    pytest.param(
        mig_mps(defaultActiveThreadPercentage=0),
        PCT,
        "must be between 1 and 100",
        id="mig-pct-zero",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit="10GB"),
        PINNED,
        'invalid quantity "10GB"',
        id="pinned-syntax",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit=True),
        PINNED,
        "must be a quantity string or an integer, got boolean",
        id="pinned-bool",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit=1.5e9), PINNED, "got number", id="pinned-float"
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit={}), PINNED, "got object", id="pinned-object"
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit="1.5"),
        PINNED,
        "must be a whole number of bytes",
        id="pinned-fraction",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit="-1Gi"),
        PINNED,
        "must not be negative",
        id="pinned-negative",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit="8Ei"),
        PINNED,
        "must be at most",
        id="pinned-too-large",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit="512Ki"),
        PINNED,
        "must be at least 1Mi, got 512Ki",
        id="pinned-below-1Mi",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit=1048575),
        PINNED,
        "must be at least 1Mi, got 1048575",
        id="pinned-int-below-1Mi",
    ),
    pytest.param(
        gpu_mps(defaultPinnedDeviceMemoryLimit=0),
        PINNED,
        "must be at least 1Mi, got 0",
        id="pinned-zero",
    ),
    pytest.param(
        mig_mps(defaultPinnedDeviceMemoryLimit="1k"),
        PINNED,
        "must be at least 1Mi",
        id="mig-pinned-below-1Mi",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit=["4Gi"]),
        PER_DEVICE,
        "must be an object, got array",
        id="per-device-array",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"GPU-abc": "4GB"}),
        f"{PER_DEVICE}[GPU-abc]",
        'invalid quantity "4GB"',
        id="per-device-syntax",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"GPU-abc": None}),
        f"{PER_DEVICE}[GPU-abc]",
        "must be a quantity string or an integer, got null",
        id="per-device-null",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"0": "1Ki"}),
        f"{PER_DEVICE}[0]",
        "must be at least 1Mi, got 1Ki",
        id="per-device-below-1Mi",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"gpu0": "4Gi"}),
        f"{PER_DEVICE}[gpu0]",
        "key must be a GPU or MIG UUID (GPU-…, MIG-…) or a device index",
        id="per-device-key-name",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"01": "4Gi"}),
        f"{PER_DEVICE}[01]",
        "key must be",
        id="per-device-key-leading-zero",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"GPU-": "4Gi"}),
        f"{PER_DEVICE}[GPU-]",
        "key must be",
        id="per-device-key-bare-prefix",
    ),
    pytest.param(
        gpu_mps(defaultPerDevicePinnedMemoryLimit={"-1": "4Gi"}),
        f"{PER_DEVICE}[-1]",
        "key must be",
        id="per-device-key-negative",
    ),
    pytest.param(
        mig_mps(defaultPerDevicePinnedMemoryLimit={"MIG-x": "1"}),
        f"{PER_DEVICE}[MIG-x]",
        "must be at least 1Mi",
        id="mig-per-device-below-1Mi",
    ),
]


@pytest.mark.parametrize(("data", "path", "message"), CASES)
def test_rejects_with_path_and_message(data: object, path: str, message: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        decoding.decode(data)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value) == (f"{path}: {info.value.message}" if path else info.value.message)


def test_unknown_fields_are_reported_before_missing_ones() -> None:
    # A misspelt field explains the missing one: report the typo.
    with pytest.raises(errors.ConfigError) as info:
        decoding.decode(gpu(sharing={"stratgy": "MPS"}))
    assert info.value.path == "sharing.stratgy"


def test_json_text_errors_keep_the_decoder_error_as_cause() -> None:
    with pytest.raises(errors.ConfigError) as info:
        decoding.decode("{")
    assert isinstance(info.value.__cause__, ValueError)
