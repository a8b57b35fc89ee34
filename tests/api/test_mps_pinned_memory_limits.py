"""`MpsConfig.pinned_memory_limits`: the per-device limits one MPS daemon applies.

Covers the default for every device, overrides by UUID and by index (the position among the
daemon's devices), UUID keys beating index keys for the same device, devices left without a
limit, and keys that name none of the devices.
"""

from __future__ import annotations

import pytest

from api import errors
from api.v1alpha1 import sharing

GI = 1024**3
UUIDS = ["GPU-aaa", "GPU-bbb", "GPU-ccc"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(sharing.MpsConfig(), {}, id="no-limits"),
        pytest.param(
            sharing.MpsConfig(None, GI), dict.fromkeys(UUIDS, GI), id="default-everywhere"
        ),
        pytest.param(
            sharing.MpsConfig(None, GI, {"GPU-bbb": 2 * GI, "2": 3 * GI}),
            {"GPU-aaa": GI, "GPU-bbb": 2 * GI, "GPU-ccc": 3 * GI},
            id="uuid-and-index-overrides",
        ),
        pytest.param(
            sharing.MpsConfig(None, None, {"1": 2 * GI}),
            {"GPU-bbb": 2 * GI},
            id="only-overridden-devices",
        ),
        pytest.param(
            sharing.MpsConfig(None, None, {"GPU-aaa": 5 * GI, "0": 4 * GI}),
            {"GPU-aaa": 5 * GI},
            id="uuid-beats-index",
        ),
    ],
)
def test_limits(config: sharing.MpsConfig, expected: dict[str, int]) -> None:
    assert config.pinned_memory_limits(UUIDS) == expected


@pytest.mark.parametrize(
    ("key", "uuids"),
    [
        pytest.param("3", UUIDS, id="index-past-the-end"),
        pytest.param("GPU-zzz", UUIDS, id="foreign-uuid"),
        pytest.param("0", [], id="no-devices"),
    ],
)
def test_key_naming_no_device(key: str, uuids: list[str]) -> None:
    config = sharing.MpsConfig(None, None, {key: GI})
    with pytest.raises(errors.ConfigError) as info:
        config.pinned_memory_limits(uuids)
    assert info.value.path == f"defaultPerDevicePinnedMemoryLimit[{key}]"
    assert "names none of the devices" in info.value.message
