"""Device selection by the real kube-scheduler: classes, CEL selectors, fallbacks and topology.

Covers:
- claim selectors on top of our DeviceClasses pick the intended device on a mixed
  A100 + H100 + L4 node: by ``productName``, by a ``cudaComputeCapability`` version range, by a
  ``memory`` capacity bound, and a ``mig.gpu.dra.dev`` claim by MIG ``profile``;
- a claim for a product the node lacks stays pending with the scheduler's reason;
- ``gpu.dra.dev`` only ever yields whole GPUs: with the whole GPU blocked by a MIG slice or by a
  share, a whole-GPU claim waits although MIG slices (or the shared device) are still allocatable;
- ``firstAvailable`` takes the whole GPU when it is free and falls back to a ``1g.5gb`` MIG slice
  when a MIG slice already blocks it, reporting which subrequest was satisfied;
- ``matchAttribute`` constraints on the standard ``pcieRoot`` and ``numaNode`` attributes keep
  the GPUs of one claim under one PCIe root (pairs 0-1, 2-3, ...) or on one NUMA node (0-3, 4-7).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.conftest import Scenario
from e2e.harness import objects

pytestmark = pytest.mark.e2e

ATTRS = 'device.attributes["gpu.dra.dev"]'
CAPACITY = 'device.capacity["gpu.dra.dev"]'
MIXED = "1xA100-40GB,1xH100-80GB,1xL4"


def _published_attribute(scenario: Scenario, node: str, attribute: str) -> dict[str, object]:
    """Device name → value of `attribute` as the API server stores the node's slices."""
    values: dict[str, object] = {}
    for item in scenario.client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={node}"):
        for device in item["spec"].get("devices") or []:
            value = (device.get("attributes") or {}).get(attribute)
            if value is not None:
                (values[device["name"]],) = value.values()
    return values


@pytest.mark.parametrize(
    ("device_class", "selectors", "expected"),
    [
        pytest.param(
            "gpu.dra.dev",
            [f'{ATTRS}.productName == "NVIDIA H100 80GB HBM3"'],
            "gpu-1",
            id="product-name-h100",
        ),
        pytest.param(
            "gpu.dra.dev",
            [
                f'{ATTRS}.cudaComputeCapability.compareTo(semver("8.9.0")) >= 0',
                f'{ATTRS}.cudaComputeCapability.compareTo(semver("9.0.0")) < 0',
            ],
            "gpu-2",
            id="compute-capability-8.9-is-l4",
        ),
        pytest.param(
            "gpu.dra.dev",
            [f'{CAPACITY}.memory.compareTo(quantity("64Gi")) >= 0'],
            "gpu-1",
            id="memory-at-least-64Gi-is-h100",
        ),
        pytest.param(
            "mig.gpu.dra.dev",
            [f'{ATTRS}.profile == "3g.40gb"'],
            r"gpu-1-mig-3g40gb-[04]",
            id="mig-profile-3g.40gb-is-on-h100",
        ),
    ],
)
def test_selectors_pick_the_intended_device(
    scenario: Scenario, device_class: str, selectors: list[str], expected: str
) -> None:
    node = scenario.node(MIXED)
    scenario.schedule(node, "claim", [objects.request("gpu", device_class, selectors=selectors)])
    (result,) = scenario.allocated("claim")
    assert re.fullmatch(expected, result["device"]), result
    assert (result["request"], result["driver"], result["pool"]) == ("gpu", "gpu.dra.dev", node)


def test_a_product_the_node_lacks_keeps_the_claim_pending(scenario: Scenario) -> None:
    node = scenario.node(MIXED)
    selector = f'{ATTRS}.productName == "NVIDIA B200"'
    scenario.schedule(node, "b200", [objects.request("gpu", "gpu.dra.dev", selectors=[selector])])
    assert "cannot allocate all claims" in scenario.waits("b200")


@pytest.mark.parametrize(
    ("blocker", "pattern"),
    [
        pytest.param(
            objects.request("mig", "mig.gpu.dra.dev", selectors=[f'{ATTRS}.profile == "1g.5gb"']),
            r"gpu-0-mig-1g5gb-\d",
            id="blocked-by-a-mig-slice",
        ),
        pytest.param(
            objects.request("share", "shared.gpu.dra.dev", capacity={"memory": "4Gi"}),
            r"gpu-0-shared",
            id="blocked-by-a-share",
        ),
    ],
)
def test_the_gpu_class_never_yields_mig_or_shared_devices(
    scenario: Scenario, blocker: dict[str, Any], pattern: str
) -> None:
    node = scenario.node("1xA100-40GB")
    scenario.schedule(node, "blocker", [blocker])
    (blocking,) = scenario.allocated("blocker")
    assert re.fullmatch(pattern, blocking["device"]), blocking
    scenario.schedule(node, "whole", [objects.request("gpu", "gpu.dra.dev")])
    assert "cannot allocate all claims" in scenario.waits("whole")
    # The same request again still gets a device (another MIG placement, or the shared device
    # once more), so the whole-GPU claim waited because of its class, not for lack of devices.
    scenario.schedule(node, "again", [blocker])
    (again,) = scenario.allocated("again")
    assert re.fullmatch(pattern, again["device"]), again
    assert objects.allocation(scenario.client, scenario.namespace, "whole") == []


FALLBACK = objects.first_available(
    "gpu",
    objects.subrequest("full", "gpu.dra.dev"),
    objects.subrequest("mig", "mig.gpu.dra.dev", selectors=[f'{ATTRS}.profile == "1g.5gb"']),
)


def test_first_available_takes_the_whole_gpu_when_free(scenario: Scenario) -> None:
    node = scenario.node("1xA100-40GB")
    scenario.schedule(node, "fallback", [FALLBACK])
    (result,) = scenario.allocated("fallback")
    assert (result["device"], result["request"]) == ("gpu-0", "gpu/full")


def test_first_available_falls_back_to_a_mig_slice(scenario: Scenario) -> None:
    node = scenario.node("1xA100-40GB")
    mig = f'{ATTRS}.profile == "1g.5gb"'
    scenario.schedule(node, "slice", [objects.request("mig", "mig.gpu.dra.dev", selectors=[mig])])
    (blocking,) = scenario.allocated("slice")
    assert blocking["device"].startswith("gpu-0-mig-1g5gb-")
    scenario.schedule(node, "fallback", [FALLBACK])
    (result,) = scenario.allocated("fallback")
    assert result["request"] == "gpu/mig"
    assert re.fullmatch(r"gpu-0-mig-1g5gb-\d", result["device"]), result
    assert result["device"] != blocking["device"]


@pytest.mark.parametrize(
    ("attribute", "requests", "groups"),
    [
        pytest.param(
            "resource.kubernetes.io/pcieRoot",
            [objects.request("a", "gpu.dra.dev"), objects.request("b", "gpu.dra.dev")],
            [{2, 3}, {4, 5}, {6, 7}],
            id="two-requests-under-one-pcie-root",
        ),
        pytest.param(
            "resource.kubernetes.io/numaNode",
            [objects.request("gpus", "gpu.dra.dev", count=4)],
            [{4, 5, 6, 7}],
            id="four-gpus-on-one-numa-node",
        ),
    ],
)
def test_match_attribute_keeps_gpus_together(
    scenario: Scenario, attribute: str, requests: list[dict[str, Any]], groups: list[set[int]]
) -> None:
    # gpu-0 goes first, so the lowest free indices (1, 2, ...) straddle the topology boundary
    # and only the constraint makes the scheduler look further.
    node = scenario.node("8xA100-40GB")
    scenario.schedule(node, "first", [objects.request("gpu", "gpu.dra.dev")])
    assert [r["device"] for r in scenario.allocated("first")] == ["gpu-0"]
    client, ns = scenario.client, scenario.namespace
    objects.create_claim(
        client, ns, "together", requests, constraints=[{"matchAttribute": attribute}]
    )
    objects.create_pod(client, ns, "together", node=node, claims=["together"])
    results = scenario.allocated("together")
    devices = sorted(r["device"] for r in results)
    assert {int(d.removeprefix("gpu-")) for d in devices} in groups, devices
    published = _published_attribute(scenario, node, attribute)
    assert len({published[d] for d in devices}) == 1, {d: published[d] for d in devices}
    assert sorted(r["request"] for r in results) == sorted(
        r["name"] for r in requests for _ in range(r["exactly"].get("count", 1))
    )
