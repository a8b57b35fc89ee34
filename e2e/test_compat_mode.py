"""Compatibility mode, on a cluster without partitionable devices and consumable capacity.

The ``compat_scenario`` control plane runs every component with
``DRAPartitionableDevices=false,DRAConsumableCapacity=false``, as an older cluster would.

Covers:
- why compatibility mode exists: such an API server accepts a full-mode pool but silently drops
  ``sharedCounters``, ``consumesCounters``, ``allowMultipleAllocations`` and capacity
  ``requestPolicy`` (a server with the features keeps them all); what is left is a pool of
  unrelated exclusive devices, on which the scheduler hands one GPU to a whole-GPU claim, a
  full-size MIG claim and a shared claim at once, and lets the "shared" device go to one claim only;
- compatibility mode on that server: whole GPUs go one claim each and a claim beyond them waits;
  with ``compat_shares=4`` an L4 offers exactly four distinct fixed shares, a fifth share claim
  waits, and a whole-GPU claim waits because the whole GPU is not offered beside its shares.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dra_driver.slices import settings
from e2e.conftest import Scenario
from e2e.harness import objects

pytestmark = pytest.mark.e2e

ATTRS = 'device.attributes["gpu.dra.dev"]'
COMPAT = settings.Mode.COMPAT


def _without_partitioning(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` less the fields of DRAPartitionableDevices and DRAConsumableCapacity."""
    stripped = copy.deepcopy(spec)
    stripped.pop("sharedCounters", None)
    for device in stripped.get("devices") or []:
        device.pop("consumesCounters", None)
        device.pop("allowMultipleAllocations", None)
        for capacity in (device.get("capacity") or {}).values():
            capacity.pop("requestPolicy", None)
    return stripped


@pytest.mark.parametrize(
    ("plane", "kept"),
    [
        pytest.param("scenario", True, id="features-on-keeps-them"),
        pytest.param("compat_scenario", False, id="features-off-drops-them"),
    ],
)
def test_a_full_mode_pool_loses_counters_and_sharing_without_the_features(
    request: pytest.FixtureRequest, plane: str, kept: bool
) -> None:
    scenario: Scenario = request.getfixturevalue(plane)
    client = scenario.client
    node = f"{scenario.namespace}-node-0"
    scenario.nodes.append(node)
    objects.create_node(client, node)
    sent: list[dict[str, Any]] = json.loads(
        json.dumps(objects.fake_node_specs(node, gpus="1xA100-40GB"))
    )
    assert "sharedCounters" in sent[0]
    assert any("allowMultipleAllocations" in d for d in sent[1]["devices"])
    names = []
    for index, spec in enumerate(sent):
        body = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": f"{node}-{index}"},
            "spec": spec,
        }
        names.append(client.create(objects.SLICES, body)["metadata"]["name"])
    stored = [client.get(f"{objects.SLICES}/{name}")["spec"] for name in names]
    if kept:
        assert stored == sent
    else:
        # Accepted without an error: the counter-only slice is now an empty slice.
        assert stored == [_without_partitioning(spec) for spec in sent]
        assert stored[0] == {k: v for k, v in sent[0].items() if k != "sharedCounters"}


def test_without_the_features_a_full_mode_pool_over_commits_the_gpu(
    compat_scenario: Scenario,
) -> None:
    scenario = compat_scenario
    node = scenario.node("1xA100-40GB")  # full mode, as a plugin that did not detect the server
    scenario.schedule(node, "whole", [objects.request("gpu", "gpu.dra.dev")])
    assert scenario.device("whole") == "gpu-0"
    seven = f'{ATTRS}.profile == "7g.40gb"'
    scenario.schedule(node, "mig", [objects.request("mig", "mig.gpu.dra.dev", selectors=[seven])])
    assert scenario.device("mig") == "gpu-0-mig-7g40gb-0"
    scenario.schedule(node, "share", [objects.request("share", "shared.gpu.dra.dev")])
    assert scenario.device("share") == "gpu-0-shared"
    # The "shared" device lost allowMultipleAllocations: it is an exclusive device now.
    scenario.schedule(node, "share-2", [objects.request("share", "shared.gpu.dra.dev")])
    assert "cannot allocate all claims" in scenario.waits("share-2")


def test_compat_mode_whole_gpus_one_claim_each(compat_scenario: Scenario) -> None:
    scenario = compat_scenario
    node = scenario.node("2xA100-40GB", config=settings.PublishSettings(mode=COMPAT))
    devices = []
    for k in range(2):
        scenario.schedule(node, f"gpu-{k}", [objects.request("gpu", "gpu.dra.dev")])
        devices.append(scenario.device(f"gpu-{k}"))
    assert sorted(devices) == ["gpu-0", "gpu-1"]
    scenario.schedule(node, "gpu-2", [objects.request("gpu", "gpu.dra.dev")])
    assert "cannot allocate all claims" in scenario.waits("gpu-2")


def test_compat_mode_fixed_shares_instead_of_the_whole_gpu(compat_scenario: Scenario) -> None:
    scenario = compat_scenario
    config = settings.PublishSettings(mode=COMPAT, shared=settings.SharedSettings(compat_shares=4))
    node = scenario.node("1xL4", config=config)
    # Asked first, while every share is free: the whole GPU is simply not offered.
    scenario.schedule(node, "whole", [objects.request("gpu", "gpu.dra.dev")])
    assert "cannot allocate all claims" in scenario.waits("whole")
    devices = []
    for k in range(4):
        scenario.schedule(node, f"share-{k}", [objects.request("share", "shared.gpu.dra.dev")])
        devices.append(scenario.device(f"share-{k}"))
    assert sorted(devices) == [f"gpu-0-share-{k}" for k in range(4)]
    scenario.schedule(node, "share-4", [objects.request("share", "shared.gpu.dra.dev")])
    assert "cannot allocate all claims" in scenario.waits("share-4")
    assert objects.allocation(scenario.client, scenario.namespace, "whole") == []
