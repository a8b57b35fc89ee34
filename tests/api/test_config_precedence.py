"""Which config applies to an allocated device: the precedence rule of `resolving`.

Covers, as a table:
- nothing applies (no entries, other requests, other sub-requests): None;
- class < claim whatever the targeting; targeted > untargeted within a source; exact sub-request >
  base request; later > earlier;
- other drivers' entries skipped; non-opaque entries an error;
- a targeted config of the wrong kind is an error naming the entry; an untargeted one is ignored;
- shared devices: targeted configs are an error, untargeted ones ignored;
- a losing entry with a bad config is still reported.
And as properties (hypothesis): the result never depends on other drivers' entries, and a claim
entry appended for the request always wins.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import configentries, devicetypes, errors, resolving
from api.v1alpha1 import register, sharing, types
from tests.api import strategies

DRIVER = strategies.DRIVER
GPU = devicetypes.DeviceType.GPU
MIG = devicetypes.DeviceType.MIG
SHARED = devicetypes.DeviceType.SHARED


def gpu(marker: int) -> dict[str, object]:
    """A GpuConfig recognisable by its thread percentage."""
    mps = {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": marker}}
    return {"apiVersion": register.API_VERSION, "kind": "GpuConfig", "sharing": mps}


def mig(marker: int) -> dict[str, object]:
    return {**gpu(marker), "kind": "MigDeviceConfig"}


def claim(parameters: object, *requests: str, driver: str = DRIVER) -> dict[str, object]:
    opaque = {"driver": driver, "parameters": parameters}
    return {"source": "FromClaim", "requests": list(requests), "opaque": opaque}


def klass(parameters: object, *requests: str) -> dict[str, object]:
    return {**claim(parameters, *requests), "source": "FromClass"}


def marker(config: types.Config | None) -> int | None:
    if config is None:
        return None
    assert isinstance(config.sharing, sharing.MpsConfig)
    return config.sharing.default_active_thread_percentage


WINNERS = [
    pytest.param([], "gpu0", GPU, None, id="no-entries"),
    pytest.param([klass(gpu(1))], "gpu0", GPU, 1, id="class-applies"),
    pytest.param([claim(gpu(1), "other")], "gpu0", GPU, None, id="other-request"),
    pytest.param(
        [klass(gpu(1), "gpu0"), claim(gpu(2))], "gpu0", GPU, 2, id="claim-beats-targeted-class"
    ),
    pytest.param(
        [claim(gpu(2)), klass(gpu(1), "gpu0")], "gpu0", GPU, 2, id="claim-beats-later-class"
    ),
    pytest.param(
        [claim(gpu(1), "gpu0"), claim(gpu(2))], "gpu0", GPU, 1, id="targeted-beats-later-untargeted"
    ),
    pytest.param(
        [klass(gpu(1), "gpu0"), klass(gpu(2))], "gpu0", GPU, 1, id="targeted-class-beats-class"
    ),
    pytest.param([claim(gpu(1)), claim(gpu(2))], "gpu0", GPU, 2, id="later-beats-earlier"),
    pytest.param(
        [claim(gpu(1), "gpu0"), claim(gpu(2), "gpu0")], "gpu0", GPU, 2, id="later-targeted-wins"
    ),
    pytest.param([claim(gpu(1), "a", "gpu0")], "gpu0", GPU, 1, id="one-of-several-names"),
    pytest.param([claim(gpu(1), "req")], "req/a", GPU, 1, id="base-request-covers-sub"),
    pytest.param(
        [claim(gpu(1), "req/a"), claim(gpu(2), "req")],
        "req/a",
        GPU,
        1,
        id="exact-sub-beats-later-base",
    ),
    pytest.param(
        [klass(gpu(1), "req/a"), claim(gpu(2), "req")],
        "req/a",
        GPU,
        2,
        id="claim-base-beats-class-sub",
    ),
    pytest.param(
        [claim(gpu(1), "gpu0"), {**claim(gpu(2)), "requests": None}],
        "gpu0",
        GPU,
        1,
        id="requests-null-is-untargeted",
    ),
    pytest.param([claim(gpu(1), "req/b")], "req/a", GPU, None, id="other-sub-request"),
    pytest.param([claim(gpu(1), "req/a")], "req", GPU, None, id="sub-does-not-cover-base"),
    pytest.param([claim(gpu(1), "req")], "req2", GPU, None, id="name-prefix-is-not-base"),
    pytest.param(
        [claim(gpu(1), "req/b"), claim(gpu(2))], "req/a", GPU, 2, id="other-sub-then-untargeted"
    ),
    pytest.param(
        [claim(gpu(1)), claim("{", driver="other.example.com")],
        "gpu0",
        GPU,
        1,
        id="other-driver-skipped",
    ),
    pytest.param(
        [claim(gpu(1), driver="other.example.com")],
        "gpu0",
        GPU,
        None,
        id="other-driver-never-applies",
    ),
    pytest.param(
        [claim(gpu(1)), claim(mig(2))], "mig0", MIG, 2, id="untargeted-wrong-kind-ignored"
    ),
    pytest.param([claim(mig(2)), claim(gpu(1))], "mig0", MIG, 2, id="later-wrong-kind-ignored"),
    pytest.param(
        [claim(mig(2), "mig0"), claim(gpu(1), "gpu0")],
        "gpu0",
        GPU,
        1,
        id="wrong-kind-for-other-request",
    ),
    pytest.param(
        [claim(gpu(1)), klass(mig(2))], "s0", SHARED, None, id="shared-ignores-untargeted"
    ),
]


@pytest.mark.parametrize(("raw", "request_name", "device_type", "expected"), WINNERS)
def test_winner(
    raw: list[object], request_name: str, device_type: devicetypes.DeviceType, expected: int | None
) -> None:
    config = resolving.resolve(raw, driver=DRIVER, request=request_name, device_type=device_type)
    assert marker(config) == expected


FAILURES = [
    pytest.param(
        [claim(gpu(1)), {"source": "FromClaim", "requests": []}],
        "gpu0",
        GPU,
        "config[1]",
        "not an opaque config",
        id="non-opaque",
    ),
    pytest.param(
        [claim(gpu(1)), claim(mig(2), "gpu0")],
        "gpu0",
        GPU,
        "config[1]",
        'MigDeviceConfig does not apply to device type gpu (request "gpu0"); use GpuConfig',
        id="targeted-wrong-kind",
    ),
    pytest.param(
        [klass(gpu(1), "req")],
        "req/mig",
        MIG,
        "config[0]",
        'GpuConfig does not apply to device type mig (request "req/mig")',
        id="base-targeted-wrong-kind",
    ),
    pytest.param(
        [claim(gpu(1), "s0")],
        "s0",
        SHARED,
        "config[0]",
        "shared devices take no opaque config: their sharing strategy is set by the node admin",
        id="shared-targeted",
    ),
    pytest.param(
        [claim({**gpu(1), "sharing": {"strategy": "Fast"}}, "other"), claim(gpu(2), "gpu0")],
        "gpu0",
        GPU,
        "config[0].opaque.parameters.sharing.strategy",
        'unsupported strategy "Fast"',
        id="losing-entry-still-validated",
    ),
    pytest.param(
        [claim(gpu(0))],
        "gpu0",
        GPU,
        "config[0].opaque.parameters.sharing.mpsConfig.defaultActiveThreadPercentage",
        "must be between 1 and 100, got 0",
        id="invalid-value-path",
    ),
]


@pytest.mark.parametrize(("raw", "request_name", "device_type", "path", "message"), FAILURES)
def test_error(
    raw: list[object],
    request_name: str,
    device_type: devicetypes.DeviceType,
    path: str,
    message: str,
) -> None:
    with pytest.raises(errors.ConfigError) as info:
        resolving.resolve(raw, driver=DRIVER, request=request_name, device_type=device_type)
    assert info.value.path == path
    assert message in info.value.message


def test_select_returns_the_entry_for_grouping() -> None:
    entries = configentries.decode([claim(gpu(1)), claim(gpu(2), "gpu1")], driver=DRIVER)
    winners = {
        name: resolving.select(entries, request=name, device_type=GPU) for name in ("gpu0", "gpu1")
    }
    assert winners["gpu0"] is entries[0]
    assert winners["gpu1"] is entries[1]


# Entries of ours that are valid, with targeting and kinds drawn from a small set, so that
# entries interact (and sometimes conflict: a targeted wrong kind is an error).
_requests = st.lists(strategies.request_names, max_size=2)
_our_entries = st.lists(
    st.builds(
        lambda source, config, requests: {**claim(config.to_dict(), *requests), "source": source},
        st.sampled_from(["FromClass", "FromClaim"]),
        strategies.valid_configs,
        _requests,
    ),
    max_size=4,
)
_foreign_entries = st.lists(
    strategies.json_values.map(lambda junk: claim(junk, "gpu0", driver=strategies.OTHER_DRIVER)),
    max_size=3,
)
_device_types = st.sampled_from(devicetypes.DeviceType)


def _outcome(raw: list[object], request: str, device_type: devicetypes.DeviceType) -> object:
    try:
        return resolving.resolve(raw, driver=DRIVER, request=request, device_type=device_type)
    except errors.ConfigError as err:
        return ("error", err.message)


@settings(max_examples=150, deadline=None)
@given(_our_entries, _foreign_entries, strategies.request_names, _device_types, st.randoms())
def test_other_drivers_never_matter(
    ours: list[object],
    foreign: list[object],
    request: str,
    device_type: devicetypes.DeviceType,
    rnd: random.Random,
) -> None:
    mixed = list(ours)
    for junk in foreign:
        mixed.insert(rnd.randint(0, len(mixed)), junk)
    assert _outcome(mixed, request, device_type) == _outcome(ours, request, device_type)


@settings(max_examples=150, deadline=None)
@given(
    _our_entries, strategies.request_names, st.sampled_from([GPU, MIG]), strategies.valid_configs
)
def test_appended_targeted_claim_entry_wins(
    ours: list[object], request: str, device_type: devicetypes.DeviceType, config: types.Config
) -> None:
    if device_type not in config.applies_to:
        config = types.GpuConfig() if device_type is GPU else types.MigDeviceConfig()
    try:
        resolving.resolve(ours, driver=DRIVER, request=request, device_type=device_type)
    except errors.ConfigError:
        return  # an earlier entry is already an error: nothing can win
    raw = [*ours, claim(config.to_dict(), request)]
    assert resolving.resolve(raw, driver=DRIVER, request=request, device_type=device_type) == config
