"""Two MPS daemons in one container are refused at prepare; in two containers they are fine.

Covers, on a node whose GPUs share through MPS (one daemon per GPU): a pod whose one container uses
shares of two GPUs (two daemons: a CUDA process can join one only) fails to prepare with a message
naming the container, the daemons and the claims, and what the attempt prepared is undone (no CDI
spec is left); the same two claims used by two containers of one pod are prepared,
each container with its own ``CUDA_MPS_PIPE_DIRECTORY``.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from e2e.conftest import NodeFactory, Scenario
from e2e.harness import kube, objects

pytestmark = pytest.mark.e2e


def _share(index: int) -> list[dict[str, Any]]:
    selector = f'device.attributes["gpu.dra.dev"].index == {index}'
    return [
        objects.request(
            "share", "shared.gpu.dra.dev", selectors=[selector], capacity={"memory": "4Gi"}
        )
    ]


def _pod(
    client: kube.Kube, ns: str, name: str, node: str, containers: dict[str, list[str]]
) -> None:
    body = objects.pod_body(
        name,
        node=node,
        containers=[objects.Container(name=c, claims=used) for c, used in containers.items()],
    )
    client.create(f"/api/v1/namespaces/{ns}/pods", body)


def test_a_container_cannot_join_two_mps_daemons(
    scenario: Scenario, plugin_nodes: NodeFactory
) -> None:
    node = plugin_nodes("2xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    objects.create_claim(client, ns, "left", _share(0))
    objects.create_claim(client, ns, "right", _share(1))
    _pod(client, ns, "together", node.name, {"main": ["left", "right"]})

    record = kube.wait_for(
        lambda: (r := node.record(ns, "together")) and r.get("error") and r, what="refused"
    )
    assert "container main of pod" in record["error"]
    assert f"gpu-0 ({ns}/left), gpu-1 ({ns}/right)" in record["error"]
    assert "a CUDA process can connect to one MPS daemon only" in record["error"]
    assert list(node.cdi_dir.glob("k8s.gpu.dra.dev-claim_*")) == []

    client.delete(f"/api/v1/namespaces/{ns}/pods/together")
    kube.wait_for(lambda: client.missing(f"/api/v1/namespaces/{ns}/pods/together"), what="gone")
    _pod(client, ns, "apart", node.name, {"a": ["left"], "b": ["right"]})
    prepared = kube.wait_for(
        functools.partial(node.prepared_record, ns, "apart"), what="apart prepared"
    )
    pipes = {
        name: [e for e in container["env"] if e.startswith("CUDA_MPS_PIPE_DIRECTORY=")]
        for name, container in prepared["containers"].items()
    }
    assert len(pipes["a"]) == 1
    assert len(pipes["b"]) == 1
    assert pipes["a"] != pipes["b"]
