"""Kubernetes objects the scenarios need: fake nodes with our published pools, classes, pods.

A fake node is a Node object (Ready, with room for many pods) plus the ResourceSlices that our
device builder makes for its fake GPUs, owned by the Node, exactly as a node's plugin would
publish them. Pods are pinned to their node by hostname, so scenarios sharing one control plane
never land on each other's nodes.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from controller import slicediff
from dra_driver import backends, inventory
from dra_driver.slices import building, settings, splitting, wire
from e2e.harness import kube

DRIVER = "gpu.dra.dev"
DEVICE_CLASSES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "deviceclasses.yaml"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"
HOSTNAME = "kubernetes.io/hostname"

Obj = kube.Obj


def apply_device_classes(client: kube.Kube) -> list[str]:
    """Create (or replace) the driver's DeviceClasses from ``deploy/deviceclasses.yaml``."""
    names = []
    for body in yaml.safe_load_all(DEVICE_CLASSES.read_text()):
        name = body["metadata"]["name"]
        path = f"/apis/resource.k8s.io/v1/deviceclasses/{name}"
        client.delete(path)
        kube.wait_for(functools.partial(client.missing, path), what=f"old class {name} gone")
        client.create("/apis/resource.k8s.io/v1/deviceclasses", body)
        names.append(name)
    return names


def create_node(client: kube.Kube, name: str) -> Obj:
    allocatable = {"cpu": "64", "memory": "512Gi", "pods": "250"}
    return client.create(
        "/api/v1/nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {HOSTNAME: name}},
            "status": {
                "capacity": allocatable,
                "allocatable": allocatable,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "FakeNode", "message": "e2e"}
                ],
            },
        },
    )


def publish_fake_node(
    client: kube.Kube,
    name: str,
    *,
    gpus: str,
    config: settings.PublishSettings | None = None,
) -> list[Obj]:
    """Create Node `name` and publish the slices a plugin with ``--gpus fake:<gpus>`` would."""
    create_node(client, name)
    return publish_slices(client, name, gpus=gpus, config=config)


def publish_slices(
    client: kube.Kube,
    name: str,
    *,
    gpus: str,
    config: settings.PublishSettings | None = None,
) -> list[Obj]:
    """Publish, for the existing Node `name`, the slices of ``--gpus fake:<gpus>``."""
    node = client.get(f"/api/v1/nodes/{name}")
    owner = {
        "apiVersion": "v1",
        "kind": "Node",
        "name": name,
        "uid": node["metadata"]["uid"],
        "controller": True,
    }
    return _create_pool(client, name, fake_node_contents(name, gpus=gpus, config=config), owner)


def _create_pool(
    client: kube.Kube,
    name: str,
    contents: list[splitting.SliceContent],
    owner: Obj | None,
) -> list[Obj]:
    """Create a node's pool from scratch, the bodies made as the slice controller makes them."""
    target = slicediff.Target(driver=DRIVER, node_name=name, pool=name, owner=owner)
    return [client.create(SLICES, body) for body in slicediff.plan(contents, [], target).creates]


def fake_node_contents(
    name: str, *, gpus: str, config: settings.PublishSettings | None = None
) -> list[splitting.SliceContent]:
    """What a plugin on node `name` with ``--gpus fake:<gpus>`` publishes, slice by slice."""
    backend = backends.open_backend(f"fake:{gpus}", node_name=name)
    node = inventory.discover(backend, node_name=name)
    return splitting.split(building.build(node, config or settings.PublishSettings()))


def fake_node_specs(
    name: str, *, gpus: str, config: settings.PublishSettings | None = None
) -> list[wire.SliceSpec]:
    """The slice specs a plugin on node `name` with ``--gpus fake:<gpus>`` publishes."""
    return splitting.specs(
        fake_node_contents(name, gpus=gpus, config=config),
        driver=DRIVER,
        node_name=name,
        pool=name,
        generation=1,
    )


def delete_node(client: kube.Kube, name: str) -> None:
    """Delete the node and its slices (not left to the garbage collector: faster, certain)."""
    for item in client.items(f"{SLICES}?fieldSelector=spec.nodeName={name}"):
        client.delete(f"{SLICES}/{item['metadata']['name']}")
    client.delete(f"/api/v1/nodes/{name}")


def create_namespace(client: kube.Kube, name: str) -> None:
    client.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


def request(
    name: str,
    device_class: str,
    *,
    selectors: Sequence[str] = (),
    capacity: dict[str, str] | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """One entry of ``spec.devices.requests`` asking for exactly one kind of device."""
    exactly = subrequest(name, device_class, selectors=selectors)
    del exactly["name"]
    if capacity:
        exactly["capacity"] = {"requests": capacity}
    if count is not None:
        exactly["count"] = count
    return {"name": name, "exactly": exactly}


def subrequest(name: str, device_class: str, *, selectors: Sequence[str] = ()) -> dict[str, Any]:
    """A device class with optional CEL selectors (a ``firstAvailable`` alternative)."""
    sub: dict[str, Any] = {"name": name, "deviceClassName": device_class}
    if selectors:
        sub["selectors"] = [{"cel": {"expression": expression}} for expression in selectors]
    return sub


def first_available(name: str, *alternatives: dict[str, Any]) -> dict[str, Any]:
    """A request satisfied by the first alternative (subrequest) that can be allocated."""
    return {"name": name, "firstAvailable": list(alternatives)}


def create_claim(
    client: kube.Kube, namespace: str, name: str, requests: list[dict[str, Any]], **devices: Any
) -> Obj:
    return client.create(
        f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {"name": name},
            "spec": {"devices": {"requests": requests, **devices}},
        },
    )


@dataclasses.dataclass(frozen=True)
class Container:
    """A container of a test pod: the ResourceClaims it uses (by claim name) and what it runs."""

    name: str = "main"
    claims: Sequence[str] = ()
    image: str = "pause"
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def pod_body(name: str, *, node: str, containers: Sequence[Container], grace: int = 0) -> Obj:
    """A pod on `node` whose containers use the named ResourceClaims (each claim once in the
    pod's ``resourceClaims``, named ``c<k>`` in order of first use)."""
    claims = list(dict.fromkeys(claim for container in containers for claim in container.claims))
    ref = {claim: f"c{k}" for k, claim in enumerate(claims)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {HOSTNAME: node},
            "terminationGracePeriodSeconds": grace,
            # Fake nodes have no kubelet: on a cluster whose node-lifecycle controller runs
            # (kind), they are soon tainted not-ready/unreachable; scheduling must go on.
            "tolerations": [
                {"key": key, "operator": "Exists"}
                for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
            ],
            "resourceClaims": [
                {"name": ref[claim], "resourceClaimName": claim} for claim in claims
            ],
            "containers": [
                {
                    "name": container.name,
                    "image": container.image,
                    **({"command": list(container.command)} if container.command else {}),
                    **({"args": list(container.args)} if container.args else {}),
                    "env": [{"name": key, "value": value} for key, value in container.env.items()],
                    "resources": {"claims": [{"name": ref[claim]} for claim in container.claims]},
                }
                for container in containers
            ],
        },
    }


def create_pod(
    client: kube.Kube, namespace: str, name: str, *, node: str, claims: list[str]
) -> Obj:
    """A pod on `node` with one container using the named ResourceClaims."""
    body = pod_body(name, node=node, containers=[Container(claims=claims)])
    return client.create(f"/api/v1/namespaces/{namespace}/pods", body)


def delete_pod(client: kube.Kube, namespace: str, name: str) -> None:
    """Force-delete (no kubelet will confirm) and wait until the pod is gone."""
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    client.delete(path, grace_period=0)
    kube.wait_for(functools.partial(client.missing, path), what=f"pod {namespace}/{name} deleted")


def scheduled_node(client: kube.Kube, namespace: str, pod: str) -> str | None:
    node: str | None = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")["spec"].get(
        "nodeName"
    )
    return node


def unschedulable_message(client: kube.Kube, namespace: str, pod: str) -> str | None:
    """The scheduler's reason if it has given up on the pod for now, else None."""
    status = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}").get("status", {})
    for condition in status.get("conditions", []):
        if condition["type"] == "PodScheduled" and condition.get("reason") == "Unschedulable":
            message: str = condition.get("message", "")
            return message
    return None


def allocation(client: kube.Kube, namespace: str, claim: str) -> list[Obj]:
    """The claim's allocated devices (``status.allocation.devices.results``), [] if none."""
    status = client.get(
        f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims/{claim}"
    ).get("status", {})
    results: list[Obj] = ((status.get("allocation") or {}).get("devices") or {}).get(
        "results"
    ) or []
    return results


def create_claimed_pod(
    client: kube.Kube, namespace: str, name: str, *, node: str, requests: list[dict[str, Any]]
) -> None:
    """A ResourceClaim `name` with `requests` and a pod `name` on `node` using it."""
    create_claim(client, namespace, name, requests)
    create_pod(client, namespace, name, node=node, claims=[name])


def wait_scheduled(client: kube.Kube, namespace: str, pod: str, *, timeout: float = 60) -> str:
    return kube.wait_for(
        functools.partial(scheduled_node, client, namespace, pod),
        what=f"pod {namespace}/{pod} scheduled",
        timeout=timeout,
    )


def wait_unschedulable(client: kube.Kube, namespace: str, pod: str, *, timeout: float = 60) -> str:
    """Wait until the scheduler reports the pod unschedulable; return its message."""
    return kube.wait_for(
        functools.partial(unschedulable_message, client, namespace, pod),
        what=f"pod {namespace}/{pod} unschedulable",
        timeout=timeout,
    )


def wait_allocated(client: kube.Kube, namespace: str, name: str) -> list[Obj]:
    """Wait until pod `name` is bound; return the allocation of claim `name`."""
    wait_scheduled(client, namespace, name)
    return allocation(client, namespace, name)


def wait_pending(client: kube.Kube, namespace: str, name: str) -> str:
    """Wait until pod `name` is unschedulable; check claim `name` got nothing; return why."""
    message = wait_unschedulable(client, namespace, name)
    assert allocation(client, namespace, name) == []
    assert scheduled_node(client, namespace, name) is None
    return message


def allocated_devices(client: kube.Kube, namespace: str, claim: str) -> list[str]:
    return [result["device"] for result in allocation(client, namespace, claim)]


EXAMPLES = DEVICE_CLASSES.parent / "examples"
_PATHS = {
    ("v1", "Pod"): "/api/v1/namespaces/{ns}/pods",
    (
        "resource.k8s.io/v1",
        "ResourceClaim",
    ): "/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims",
    (
        "resource.k8s.io/v1",
        "ResourceClaimTemplate",
    ): "/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaimtemplates",
}


def example_documents() -> list[Obj]:
    """Every object of ``deploy/examples/*.yaml``, in file order."""
    return [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def create_object(client: kube.Kube, namespace: str, body: Obj) -> Obj:
    """Create a namespaced object of a kind the examples use."""
    path = _PATHS[(body["apiVersion"], body["kind"])].format(ns=namespace)
    return client.create(path, body)


def pod_claims(client: kube.Kube, namespace: str, pod: str) -> dict[str, str]:
    """Pod claim entry name → ResourceClaim name (generated from a template, or named)."""
    obj = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
    named = {
        ref["name"]: ref["resourceClaimName"]
        for ref in obj["spec"].get("resourceClaims", [])
        if ref.get("resourceClaimName")
    }
    generated = {
        status["name"]: status["resourceClaimName"]
        for status in obj.get("status", {}).get("resourceClaimStatuses", [])
        if status.get("resourceClaimName")
    }
    return {**named, **generated}


def publish_unowned_slices(client: kube.Kube, name: str, *, gpus: str) -> list[Obj]:
    """The slices of ``--gpus fake:<gpus>`` for node `name`, without an owner reference.

    The cluster's garbage collector leaves these alone when the Node goes; only the cluster
    controller's slice garbage collection removes them.
    """
    return _create_pool(client, name, fake_node_contents(name, gpus=gpus), None)


def node_slices(client: kube.Kube, node: str) -> list[str]:
    """Names of the slices whose ``spec.nodeName`` is `node`."""
    return sorted(
        item["metadata"]["name"]
        for item in client.items(f"{SLICES}?fieldSelector=spec.nodeName={node}")
    )
