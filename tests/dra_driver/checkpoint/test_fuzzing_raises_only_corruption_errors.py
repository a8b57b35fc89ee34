"""Whatever a checkpoint file holds, decoding it either succeeds or raises a corruption error.

`store.load` relies on this to set a bad file aside instead of crashing the plugin at start-up.
Covers: random bytes; random JSON in a well-formed envelope with a correct checksum (so the
``v1`` schema checks are what is exercised); near-valid ``v1`` data with one field replaced by a
random JSON value; deeply nested JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dra_driver.checkpoint import errors, model, scheme

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
DEVICE_KEYS = [
    "requestNames",
    "pool",
    "device",
    "shareId",
    "cdiIds",
    "gpuUuid",
    "migUuid",
    "migGpuInstanceId",
    "adminAccess",
    "consumedCapacity",
    "isolation",
]


def _envelope(data: Any) -> bytes:
    checksum = scheme.checksum(data)
    return json.dumps(
        {"kind": "GpuDraCheckpoint", "version": "v1", "checksum": checksum, "data": data}
    ).encode()


def _decode_or_corrupt(content: bytes) -> None:
    try:
        checkpoint = scheme.decode(content)
    except errors.CorruptCheckpointError:
        return
    assert isinstance(checkpoint, model.Checkpoint)


@given(st.binary(max_size=64))
def test_random_bytes(content: bytes) -> None:
    _decode_or_corrupt(content)


@given(json_values)
def test_random_data_in_a_valid_envelope(data: Any) -> None:
    _decode_or_corrupt(_envelope(data))


@given(st.sampled_from(DEVICE_KEYS), json_values)
def test_one_device_field_replaced(key: str, value: Any) -> None:
    device: dict[str, Any] = dict.fromkeys(DEVICE_KEYS)
    device[key] = value
    claim = {"namespace": "ns", "name": "c", "state": "PrepareStarted", "devices": [device]}
    _decode_or_corrupt(_envelope({"bootId": "b", "claims": {"u": claim}}))


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json(depth: int) -> None:
    _decode_or_corrupt(b"[" * depth + b"]" * depth)
