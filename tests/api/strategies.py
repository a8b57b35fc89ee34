"""Hypothesis strategies shared by the api tests: JSON values, valid configs, near-miss configs.

- `json_values`: any JSON value (None, booleans, numbers, text, arrays, objects), nested.
- `valid_configs`: every shape of valid v1alpha1 config, as typed objects.
- `near_configs`: objects that look almost right: the right apiVersion and kind (mostly), known
  keys holding random values, and random extra fields.
- `raw_entries`: allocation config lists mixing our entries, other drivers' and junk.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from api import quantities
from api.v1alpha1 import register, sharing, types, validate

DRIVER = "gpu.dra.dev"
OTHER_DRIVER = "other.example.com"

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# Text that looks like a quantity more often than random text does.
quantity_texts = st.from_regex(
    r"[+-]?[0-9]{0,4}(\.[0-9]{0,3})?([KMGTPE]i|[numkMGTPE]|[eE]-?[0-9]{1,3})?", fullmatch=True
)
byte_counts = st.integers(validate.MIN_PINNED_MEMORY, quantities.MAX_BYTES)
device_keys = st.from_regex(
    r"(GPU|MIG)-[0-9a-f]{1,8}(-[0-9a-f]{1,4})?|0|[1-9][0-9]?", fullmatch=True
)

mps_configs = st.builds(
    sharing.MpsConfig,
    default_active_thread_percentage=st.none() | st.integers(1, 100),
    default_pinned_device_memory_limit=st.none() | byte_counts,
    default_per_device_pinned_memory_limit=st.dictionaries(device_keys, byte_counts, max_size=3),
)
time_slicing_configs = st.builds(
    sharing.TimeSlicingConfig, st.sampled_from(sharing.TimeSliceInterval)
)
gpu_configs = st.builds(types.GpuConfig, st.none() | time_slicing_configs | mps_configs)
mig_device_configs = st.builds(types.MigDeviceConfig, st.none() | mps_configs)
valid_configs: st.SearchStrategy[types.Config] = gpu_configs | mig_device_configs


def _maybe(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right thing; one time in eight, any JSON value."""
    # Hypothesis favours the bounds of a range, so the right thing sits at 0 and the junk at 7.
    return st.integers(0, 7).flatmap(lambda i: json_values if i == 7 else right)


_ABSENT = object()


def _maybe_absent(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`_maybe(right)`, or one time in eight `_ABSENT`: the field is left out."""
    return st.integers(0, 7).flatmap(lambda i: st.just(_ABSENT) if i == 7 else _maybe(right))


def _loose(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object whose `fields` are mostly present and right, now and then with an extra one."""
    absent_or_maybe = {name: _maybe_absent(value) for name, value in fields.items()}
    known = st.fixed_dictionaries(absent_or_maybe).map(
        lambda d: {k: v for k, v in d.items() if v is not _ABSENT}
    )
    extra = _maybe(st.just({})).map(lambda x: x if isinstance(x, dict) else {"extra": x})
    return st.tuples(known, extra).map(lambda pair: {**pair[0], **pair[1]})


_near_mps = _loose(
    {
        "defaultActiveThreadPercentage": st.integers(-5, 105),
        "defaultPinnedDeviceMemoryLimit": quantity_texts | st.integers(),
        "defaultPerDevicePinnedMemoryLimit": st.dictionaries(
            device_keys | st.text(max_size=6), _maybe(quantity_texts), max_size=3
        ),
    }
)
_near_time_slicing = _loose({"interval": st.sampled_from(["Default", "Long", "long"])})
_near_sharing = st.one_of(
    _loose({"strategy": st.just("TimeSlicing"), "timeSlicingConfig": _near_time_slicing}),
    _loose({"strategy": st.just("MPS"), "mpsConfig": _near_mps}),
    _loose(
        {
            "strategy": st.sampled_from(["TimeSlicing", "MPS", "mps"]),
            "timeSlicingConfig": _near_time_slicing,
            "mpsConfig": _near_mps,
        }
    ),
)
near_configs = st.tuples(
    _maybe(st.just(register.API_VERSION)),
    _maybe(st.sampled_from(register.KINDS)),
    _loose({"sharing": _near_sharing}),
).map(lambda t: {"apiVersion": t[0], "kind": t[1], **t[2]})

request_names = st.sampled_from(["gpu0", "mig0", "req", "req/a", "req/b"])
_parameters = near_configs | valid_configs.map(lambda config: config.to_dict())
_near_entry = _loose(
    {
        "source": st.sampled_from(["FromClass", "FromClaim"]),
        "requests": st.lists(_maybe(request_names), max_size=3),
        "opaque": _loose(
            {"driver": st.sampled_from([DRIVER, OTHER_DRIVER]), "parameters": _parameters}
        ),
    }
)
raw_entries = _maybe(st.lists(_near_entry, max_size=5))
