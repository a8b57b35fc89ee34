"""Decoding valid configs: defaults, normalization and the accepted input forms.

Covers:
- no ``sharing`` means exclusive use; ``null`` counts as absent for optional fields;
- TimeSlicing without settings gets interval Default; MPS without settings an empty MpsConfig;
- quantities become byte counts, from strings or JSON integers; the bounds (1Mi, 1, 100) pass;
- every accepted per-device key form (GPU and MIG UUIDs, the old MIG form, device indexes);
- input as a dict, as JSON text and as JSON bytes gives the same config;
- each kind's applicability and its JSON form (``to_dict``);
- decoded configs are immutable and hashable, so they can key a dict of prepared groups.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from api import devicetypes
from api.v1alpha1 import decoding, register, sharing, types

API = register.API_VERSION
GI, MI = 1024**3, 1024**2


def gpu(**fields: object) -> dict[str, object]:
    return {"apiVersion": API, "kind": "GpuConfig", **fields}


def mig(**fields: object) -> dict[str, object]:
    return {"apiVersion": API, "kind": "MigDeviceConfig", **fields}


def mps(**fields: object) -> dict[str, object]:
    return {"strategy": "MPS", "mpsConfig": fields}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(gpu(), types.GpuConfig(), id="gpu-exclusive"),
        pytest.param(gpu(sharing=None), types.GpuConfig(), id="gpu-sharing-null"),
        pytest.param(mig(), types.MigDeviceConfig(), id="mig-exclusive"),
        pytest.param(
            gpu(sharing={"strategy": "TimeSlicing"}),
            types.GpuConfig(sharing.TimeSlicingConfig(sharing.TimeSliceInterval.DEFAULT)),
            id="time-slicing-default-settings",
        ),
        pytest.param(
            gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {}}),
            types.GpuConfig(sharing.TimeSlicingConfig()),
            id="time-slicing-empty-settings",
        ),
        pytest.param(
            gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": None}}),
            types.GpuConfig(sharing.TimeSlicingConfig()),
            id="interval-null",
        ),
        pytest.param(
            gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}}),
            types.GpuConfig(sharing.TimeSlicingConfig(sharing.TimeSliceInterval.LONG)),
            id="time-slicing-long",
        ),
        pytest.param(
            gpu(sharing={"strategy": "TimeSlicing", "mpsConfig": None}),
            types.GpuConfig(sharing.TimeSlicingConfig()),
            id="other-settings-null",
        ),
        pytest.param(
            gpu(sharing={"strategy": "MPS"}),
            types.GpuConfig(sharing.MpsConfig()),
            id="mps-default-settings",
        ),
        pytest.param(
            mig(sharing={"strategy": "MPS"}),
            types.MigDeviceConfig(sharing.MpsConfig()),
            id="mig-mps-default",
        ),
        pytest.param(
            gpu(
                sharing=mps(defaultActiveThreadPercentage=50, defaultPinnedDeviceMemoryLimit="10Gi")
            ),
            types.GpuConfig(sharing.MpsConfig(50, 10 * GI)),
            id="mps-demo",
        ),
        pytest.param(
            gpu(sharing=mps(defaultActiveThreadPercentage=1, defaultPinnedDeviceMemoryLimit="1Mi")),
            types.GpuConfig(sharing.MpsConfig(1, MI)),
            id="lower-bounds",
        ),
        pytest.param(
            mig(sharing=mps(defaultActiveThreadPercentage=100, defaultPinnedDeviceMemoryLimit=MI)),
            types.MigDeviceConfig(sharing.MpsConfig(100, MI)),
            id="upper-bound-and-json-integer",
        ),
        pytest.param(
            gpu(sharing=mps(defaultPinnedDeviceMemoryLimit="1.5Gi")),
            types.GpuConfig(sharing.MpsConfig(None, 3 * GI // 2)),
            id="fractional-quantity-whole-bytes",
        ),
        pytest.param(
            gpu(
                sharing=mps(
                    defaultActiveThreadPercentage=None, defaultPerDevicePinnedMemoryLimit=None
                )
            ),
            types.GpuConfig(sharing.MpsConfig()),
            id="mps-fields-null",
        ),
        pytest.param(
            gpu(
                sharing=mps(
                    defaultPerDevicePinnedMemoryLimit={
                        "GPU-5f8e3c2a-1b2c-4d5e-8f90-123456789abc": "4Gi",
                        "MIG-7c1a2b3c-0d4e-5f60-7182-93a4b5c6d7e8": "2G",
                        "MIG-GPU-5f8e3c2a-1b2c-4d5e-8f90-123456789abc/1/0": "1Gi",
                        "0": 4 * GI,
                        "12": "1Mi",
                    }
                )
            ),
            types.GpuConfig(
                sharing.MpsConfig(
                    default_per_device_pinned_memory_limit={
                        "GPU-5f8e3c2a-1b2c-4d5e-8f90-123456789abc": 4 * GI,
                        "MIG-7c1a2b3c-0d4e-5f60-7182-93a4b5c6d7e8": 2 * 10**9,
                        "MIG-GPU-5f8e3c2a-1b2c-4d5e-8f90-123456789abc/1/0": GI,
                        "0": 4 * GI,
                        "12": MI,
                    }
                )
            ),
            id="per-device-key-forms",
        ),
    ],
)
def test_decodes_with_defaults(data: dict[str, object], expected: types.Config) -> None:
    assert decoding.decode(data) == expected


@pytest.mark.parametrize(
    "encode", [json.dumps, lambda d: json.dumps(d).encode()], ids=["str", "bytes"]
)
def test_json_text_decodes_like_a_dict(encode: Callable[[object], str | bytes]) -> None:
    data = gpu(sharing=mps(defaultActiveThreadPercentage=20))
    assert decoding.decode(encode(data)) == decoding.decode(data)


def test_applicability_is_on_the_kind() -> None:
    assert types.GpuConfig.applies_to == {devicetypes.DeviceType.GPU}
    assert types.MigDeviceConfig.applies_to == {devicetypes.DeviceType.MIG}
    assert types.kinds_for(devicetypes.DeviceType.SHARED) == []
    assert types.kinds_for(devicetypes.DeviceType.MIG) == ["MigDeviceConfig"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(types.GpuConfig(), gpu(), id="exclusive"),
        pytest.param(
            types.GpuConfig(sharing.TimeSlicingConfig()),
            gpu(sharing={"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Default"}}),
            id="time-slicing",
        ),
        pytest.param(
            types.MigDeviceConfig(sharing.MpsConfig(50, 10 * GI, {"0": 1536 * MI})),
            mig(
                sharing=mps(
                    defaultActiveThreadPercentage=50,
                    defaultPinnedDeviceMemoryLimit="10Gi",
                    defaultPerDevicePinnedMemoryLimit={"0": "1536Mi"},
                )
            ),
            id="mps",
        ),
    ],
)
def test_to_dict(config: types.Config, expected: dict[str, object]) -> None:
    assert config.to_dict() == expected


def test_configs_are_frozen_and_hashable() -> None:
    config = decoding.decode(gpu(sharing=mps(defaultPerDevicePinnedMemoryLimit={"0": "1Gi"})))
    again = decoding.decode(gpu(sharing=mps(defaultPerDevicePinnedMemoryLimit={"0": "1Gi"})))
    assert {config: "group"}[again] == "group"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sharing = None  # type: ignore[misc]
    assert isinstance(config.sharing, sharing.MpsConfig)
    with pytest.raises(TypeError):
        config.sharing.default_per_device_pinned_memory_limit["0"] = 1  # type: ignore[index]


def test_per_device_limits_are_copied_from_the_caller() -> None:
    limits = {"0": GI}
    config = sharing.MpsConfig(default_per_device_pinned_memory_limit=limits)
    limits["0"] = MI
    assert config.default_per_device_pinned_memory_limit == {"0": GI}
