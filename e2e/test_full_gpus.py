"""Full GPUs on a fake 8×A100-40GB node, scheduled by the real kube-scheduler.

Covers: eight one-GPU claims get eight distinct GPUs; a ninth stays pending with the scheduler's
reason; releasing one GPU lets it through.
"""

from __future__ import annotations

import functools

import pytest

from e2e.conftest import Scenario
from e2e.harness import kube, objects

pytestmark = pytest.mark.e2e


def test_eight_gpus_for_eight_pods_and_the_ninth_waits(scenario: Scenario) -> None:
    node = scenario.node("8xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    for k in range(9):
        objects.create_claim(client, ns, f"gpu-{k}", [objects.request("gpu", "gpu.dra.dev")])
        objects.create_pod(client, ns, f"pod-{k}", node=node, claims=[f"gpu-{k}"])
    for k in range(8):
        kube.wait_for(
            functools.partial(objects.scheduled_node, client, ns, f"pod-{k}"),
            what=f"pod-{k} scheduled",
        )
    devices = [objects.allocation(client, ns, f"gpu-{k}") for k in range(8)]
    assert sorted(d[0]["device"] for d in devices) == [f"gpu-{i}" for i in range(8)]
    assert {d[0]["pool"] for d in devices} == {node}
    message = kube.wait_for(
        lambda: objects.unschedulable_message(client, ns, "pod-8"), what="pod-8 unschedulable"
    )
    assert "cannot allocate all claims" in message
    assert objects.allocation(client, ns, "gpu-8") == []
    objects.delete_pod(client, ns, "pod-3")
    kube.wait_for(
        lambda: objects.scheduled_node(client, ns, "pod-8"), what="pod-8 scheduled", timeout=90
    )
