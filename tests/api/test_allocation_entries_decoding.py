"""Reading a claim's allocated config list: our entries decoded, others skipped, errors located.

Covers:
- entries of other drivers are skipped unread, even when malformed;
- every entry of ours is decoded, with its index, source and requests;
- a missing list (null) is empty; unknown entry fields are ignored (API-server objects);
- every error path: list and entry types, non-opaque entries, the driver, source, requests,
  missing and invalid parameters, each under ``config[i]``;
- a default source for lists that carry none (claim and class specs).
"""

from __future__ import annotations

import pytest

from api import configentries, errors
from api.v1alpha1 import register, sharing, types

DRIVER = "gpu.dra.dev"
GPU = {"apiVersion": register.API_VERSION, "kind": "GpuConfig"}


def entry(driver: object = DRIVER, parameters: object = GPU, **fields: object) -> dict[str, object]:
    return {"source": "FromClaim", "opaque": {"driver": driver, "parameters": parameters}, **fields}


def test_decodes_our_entries_and_skips_others() -> None:
    raw = [
        {"source": "FromClass", "opaque": {"driver": DRIVER, "parameters": GPU}},
        entry(driver="other.example.com", parameters="not even JSON", source=7, requests="x"),
        entry(requests=["gpu0", "req/a"], status="a field from a newer API server"),
    ]
    assert configentries.decode(raw, driver=DRIVER) == [
        configentries.Entry(0, configentries.ConfigSource.CLASS, (), types.GpuConfig()),
        configentries.Entry(
            2, configentries.ConfigSource.CLAIM, ("gpu0", "req/a"), types.GpuConfig()
        ),
    ]


@pytest.mark.parametrize("raw", [None, []], ids=["null", "empty"])
def test_no_entries(raw: object) -> None:
    assert configentries.decode(raw, driver=DRIVER) == []


def test_entry_path_names_its_position() -> None:
    (decoded,) = configentries.decode([entry(driver="x"), entry()], driver=DRIVER)
    assert decoded.path == "config[1]"


def test_default_source_for_spec_lists() -> None:
    raw = [{"opaque": {"driver": DRIVER, "parameters": {**GPU, "sharing": {"strategy": "MPS"}}}}]
    (decoded,) = configentries.decode(raw, driver=DRIVER, source=configentries.ConfigSource.CLASS)
    assert decoded.source is configentries.ConfigSource.CLASS
    assert decoded.config == types.GpuConfig(sharing.MpsConfig())


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        pytest.param({"a": 1}, "config", "must be an array, got object", id="list-object"),
        pytest.param(["x"], "config[0]", "must be an object, got string", id="entry-string"),
        pytest.param(
            [{"source": "FromClaim"}],
            "config[0]",
            "not an opaque config; only opaque configs are supported",
            id="no-opaque",
        ),
        pytest.param(
            [entry(driver="x"), {"source": "FromClaim", "nonOpaque": {"driver": DRIVER}}],
            "config[1]",
            "not an opaque config",
            id="future-non-opaque",
        ),
        pytest.param([{"opaque": None}], "config[0]", "not an opaque config", id="opaque-null"),
        pytest.param(
            [{"opaque": []}], "config[0].opaque", "must be an object, got array", id="opaque-array"
        ),
        pytest.param(
            [{"opaque": {}}],
            "config[0].opaque.driver",
            "must be a string, got null",
            id="no-driver",
        ),
        pytest.param(
            [entry(driver=1)],
            "config[0].opaque.driver",
            "must be a string, got integer",
            id="driver-int",
        ),
        pytest.param(
            [{"opaque": {"driver": DRIVER, "parameters": GPU}}],
            "config[0].source",
            "required; supported: FromClass, FromClaim",
            id="no-source",
        ),
        pytest.param(
            [entry(source="FromPod")],
            "config[0].source",
            'unsupported source "FromPod"',
            id="source-unknown",
        ),
        pytest.param(
            [entry(requests="gpu0")],
            "config[0].requests",
            "must be an array, got string",
            id="requests-string",
        ),
        pytest.param(
            [entry(requests=["a", 1])],
            "config[0].requests[1]",
            "must be a string, got integer",
            id="request-int",
        ),
        pytest.param(
            [entry(parameters=None)], "config[0].opaque.parameters", "required", id="no-parameters"
        ),
        pytest.param(
            [entry(), entry(parameters={**GPU, "sharing": {"strategy": "Exclusive"}})],
            "config[1].opaque.parameters.sharing.strategy",
            'unsupported strategy "Exclusive"',
            id="bad-parameters",
        ),
        pytest.param(
            [entry(parameters="{")],
            "config[0].opaque.parameters",
            "invalid JSON",
            id="parameters-bad-json",
        ),
    ],
)
def test_rejects_with_entry_path(raw: object, path: str, message: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        configentries.decode(raw, driver=DRIVER)
    assert info.value.path == path
    assert message in info.value.message


def test_source_ranks() -> None:
    assert configentries.ConfigSource.CLASS.rank < configentries.ConfigSource.CLAIM.rank
