"""Hostile input never escapes as anything but `errors.ConfigError` (hypothesis fuzzing).

Covers `decoding.decode` on arbitrary JSON values, on JSON text and arbitrary bytes, and on
near-miss configs (right apiVersion and kind, random values at known keys, random extra fields);
and `resolving.resolve` on arbitrary config lists and on near-miss entries of ours and others'.
A run that raises nothing must return a config of a known kind (or None from `resolve`).
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from api import devicetypes, errors, resolving
from api.v1alpha1 import decoding, types
from tests.api import strategies


def _decodes_or_config_error(data: object) -> None:
    try:
        config = decoding.decode(data)
    except errors.ConfigError:
        return
    assert isinstance(config, types.KINDS)


@settings(max_examples=300, deadline=None)
@given(strategies.json_values)
def test_decode_any_json_value(data: object) -> None:
    _decodes_or_config_error(data)


@settings(max_examples=300, deadline=None)
@given(strategies.near_configs)
def test_decode_near_miss_configs(data: dict[str, object]) -> None:
    _decodes_or_config_error(data)
    _decodes_or_config_error(json.dumps(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_decode_any_text(data: bytes | str) -> None:
    _decodes_or_config_error(data)


@settings(max_examples=300, deadline=None)
@given(
    strategies.raw_entries | strategies.json_values,
    st.text(max_size=8) | strategies.request_names,
    st.sampled_from(devicetypes.DeviceType),
)
def test_resolve_any_config_list(
    raw: object, request: str, device_type: devicetypes.DeviceType
) -> None:
    try:
        config = resolving.resolve(
            raw, driver=strategies.DRIVER, request=request, device_type=device_type
        )
    except errors.ConfigError:
        return
    assert config is None or device_type in config.applies_to
