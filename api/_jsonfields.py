"""Strict reading of JSON values for the decoders: type checks that name the field at fault.

Each reader takes a parsed JSON value and the path it was found at, and returns it with a precise
Python type or raises `errors.ConfigError` saying which JSON type was expected and which was found.
JSON ``null`` counts as absent, as it does for the optional fields of Kubernetes objects.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Mapping, Sequence
from typing import TypeVar

from api import errors

_E = TypeVar("_E", bound=enum.Enum)

_NAMES: dict[type, str] = {type(None): "null", bool: "boolean", int: "integer", float: "number"}
_NAMES.update({str: "string", list: "array", tuple: "array", dict: "object"})


def type_name(value: object) -> str:
    """The JSON name of `value`'s type, for messages."""
    return _NAMES.get(type(value), "object" if isinstance(value, Mapping) else type(value).__name__)


def loads(data: str | bytes | bytearray) -> object:
    """Parse JSON text strictly: UTF-8, no duplicate keys, no NaN or Infinity."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and over-long integers.
        raise errors.ConfigError(f"invalid JSON: {err}") from err


def as_object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise errors.ConfigError(f"must be an object, got {type_name(value)}", path)
    for key in value:
        if not isinstance(key, str):
            raise errors.ConfigError(f"object keys must be strings, got {type_name(key)}", path)
    return value


def as_array(value: object, path: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise errors.ConfigError(f"must be an array, got {type_name(value)}", path)
    return value


def as_string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise errors.ConfigError(f"must be a string, got {type_name(value)}", path)
    return value


def as_int(value: object, path: str) -> int:
    # bool is an int subclass in Python, but not a JSON integer.
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.ConfigError(f"must be an integer, got {type_name(value)}", path)
    return value


def as_choice(value: object, path: str, choices: Sequence[str], *, what: str) -> str:
    """One of `choices` (a required string field); `what` names the field in messages."""
    supported = ", ".join(choices)
    if value is None:
        raise errors.ConfigError(f"required; supported: {supported}", path)
    text = as_string(value, path)
    if text not in choices:
        raise errors.ConfigError(
            f"unsupported {what} {errors.quote(text)}; supported: {supported}", path
        )
    return text


def as_enum(value: object, path: str, enum_type: type[_E], *, what: str) -> _E:
    """One of `enum_type`'s members, by value (a required string field)."""
    return enum_type(as_choice(value, path, [str(m.value) for m in enum_type], what=what))


def check_fields(obj: Mapping[str, object], known: Collection[str], path: str) -> None:
    """Reject fields that `known` does not list: strict decoding catches typos in field names."""
    for name in sorted(obj):
        if name not in known:
            raise errors.ConfigError(
                f"unknown field; known fields: {', '.join(sorted(known))}", errors.join(path, name)
            )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate field {errors.quote(key)}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")
