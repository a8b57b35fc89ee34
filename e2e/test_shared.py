"""Shared fractions of a GPU (consumable capacity), allocated by the real kube-scheduler.

Covers: 4Gi shares fit exactly as many times as the GPU's memory allows, each with its own share ID
and consumedCapacity; a share that asks for nothing gets the deliberate default (1Gi, cores 0),
never a zero-valued share; cores are consumable too; while any share is allocated neither the
whole GPU nor a MIG slice can be, and once the last share is released they can; and while a MIG
slice is allocated no share can be.
"""

from __future__ import annotations

import functools
import time
import uuid

import pytest

from e2e.conftest import Scenario
from e2e.harness import kube, objects

pytestmark = pytest.mark.e2e


def share(**capacity: str) -> list[dict[str, object]]:
    return [objects.request("share", "shared.gpu.dra.dev", capacity=capacity or None)]


WHOLE = [objects.request("gpu", "gpu.dra.dev")]
ONE_SLICE = [
    objects.request(
        "mig",
        "mig.gpu.dra.dev",
        selectors=['device.attributes["gpu.dra.dev"].profile == "1g.5gb"'],
    )
]


def test_4gi_shares_fit_as_often_as_the_memory_allows(scenario: Scenario) -> None:
    node = scenario.node("1xA100-40GB")  # 40Gi
    client, ns = scenario.client, scenario.namespace
    for k in range(11):
        objects.create_claimed_pod(client, ns, f"s-{k}", node=node, requests=share(memory="4Gi"))
    results = []
    for k in range(10):
        objects.wait_scheduled(client, ns, f"s-{k}")
        results += objects.allocation(client, ns, f"s-{k}")
    objects.wait_unschedulable(client, ns, "s-10")
    assert {r["device"] for r in results} == {"gpu-0-shared"}
    share_ids = [r["shareID"] for r in results]
    assert len(set(share_ids)) == 10
    assert all(uuid.UUID(share_id) for share_id in share_ids)
    assert all(r["consumedCapacity"] == {"memory": "4Gi", "cores": "0"} for r in results)


def test_a_share_that_asks_for_nothing_gets_the_default(scenario: Scenario) -> None:
    node = scenario.node("1xL4")
    client, ns = scenario.client, scenario.namespace
    objects.create_claimed_pod(client, ns, "plain", node=node, requests=share())
    objects.create_claimed_pod(client, ns, "odd", node=node, requests=share(memory="300Mi"))
    objects.wait_scheduled(client, ns, "plain")
    objects.wait_scheduled(client, ns, "odd")
    assert objects.allocation(client, ns, "plain")[0]["consumedCapacity"] == {
        "memory": "1Gi",
        "cores": "0",
    }
    # Rounded up to the next 256Mi step above the minimum.
    assert objects.allocation(client, ns, "odd")[0]["consumedCapacity"]["memory"] == "512Mi"


def test_cores_are_consumable(scenario: Scenario) -> None:
    node = scenario.node("1xL4")
    client, ns = scenario.client, scenario.namespace
    objects.create_claimed_pod(client, ns, "sixty", node=node, requests=share(cores="60"))
    objects.wait_scheduled(client, ns, "sixty")
    objects.create_claimed_pod(client, ns, "fifty", node=node, requests=share(cores="50"))
    objects.wait_unschedulable(client, ns, "fifty")
    objects.create_claimed_pod(client, ns, "forty", node=node, requests=share(cores="40"))
    objects.wait_scheduled(client, ns, "forty")
    assert objects.allocation(client, ns, "forty")[0]["consumedCapacity"] == {
        "memory": "1Gi",
        "cores": "40",
    }


@pytest.mark.parametrize("blocked", ["whole-gpu", "mig-slice"])
def test_shares_block_the_whole_gpu_and_mig_until_the_last_one_goes(
    scenario: Scenario, blocked: str
) -> None:
    node = scenario.node("1xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    for k in range(2):
        objects.create_claimed_pod(client, ns, f"s-{k}", node=node, requests=share(memory="2Gi"))
        objects.wait_scheduled(client, ns, f"s-{k}")
    requests = WHOLE if blocked == "whole-gpu" else ONE_SLICE
    objects.create_claimed_pod(client, ns, "big", node=node, requests=requests)
    objects.wait_unschedulable(client, ns, "big")
    objects.delete_pod(client, ns, "s-0")
    kube.wait_for(functools.partial(_deallocated, scenario, "s-0"), what="share s-0 deallocated")
    time.sleep(3)  # room for the scheduler to retry "big" after the release: it must still fail
    assert objects.scheduled_node(client, ns, "big") is None  # one share is still there
    assert objects.allocation(client, ns, "big") == []
    objects.delete_pod(client, ns, "s-1")
    objects.wait_scheduled(client, ns, "big", timeout=90)


def _deallocated(scenario: Scenario, claim: str) -> bool:
    return objects.allocation(scenario.client, scenario.namespace, claim) == []


def test_no_share_while_a_mig_slice_is_allocated(scenario: Scenario) -> None:
    node = scenario.node("1xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    objects.create_claimed_pod(client, ns, "slice", node=node, requests=ONE_SLICE)
    objects.wait_scheduled(client, ns, "slice")
    objects.create_claimed_pod(client, ns, "s", node=node, requests=share(memory="1Gi"))
    objects.wait_unschedulable(client, ns, "s")
    objects.delete_pod(client, ns, "slice")
    objects.wait_scheduled(client, ns, "s", timeout=90)
