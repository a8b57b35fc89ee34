"""Object fixtures for the occupancy map: what a cluster would return, without a cluster.

Slices are the device builder's own output for fake GPUs (what a plugin publishes); claims and
pods are written the way kube-scheduler and the kubelet leave them (allocation results with
``shareID`` and ``consumedCapacity`` for shares, ``reservedFor`` naming the pods).
"""

from __future__ import annotations

import uuid
from typing import Any

from cli import reading
from dra_driver import backends, inventory
from dra_driver.slices import building, settings, splitting

Obj = dict[str, Any]
DRIVER = "gpu.dra.dev"


def node_slices(
    node: str,
    gpus: str = "4xA100-40GB",
    *,
    config: settings.PublishSettings | None = None,
    generation: int = 1,
    taints: dict[str, list[Obj]] | None = None,
) -> list[Obj]:
    """The ResourceSlices a plugin with ``--gpus fake:<gpus>`` publishes on `node`."""
    backend = backends.open_backend(f"fake:{gpus}", node_name=node)
    contents = splitting.split(
        building.build(
            inventory.discover(backend, node_name=node), config or settings.PublishSettings()
        )
    )
    specs = splitting.specs(
        contents, driver=DRIVER, node_name=node, pool=node, generation=generation
    )
    slices = []
    for n, spec in enumerate(specs):
        for device in spec.get("devices", []):
            if device["name"] in (taints or {}):
                device["taints"] = (taints or {})[device["name"]]  # type: ignore[typeddict-item]
        slices.append({"metadata": {"name": f"{node}-{generation}-{n}"}, "spec": dict(spec)})
    return slices


def result(
    device: str,
    *,
    node: str = "node-a",
    request: str = "gpu",
    memory: str | None = None,
    cores: str | None = None,
    driver: str = DRIVER,
    share: int = 0,
) -> Obj:
    """One allocation result; with `memory` or `cores`, a share of a multi-allocatable device."""
    found: Obj = {"request": request, "driver": driver, "pool": node, "device": device}
    if memory is not None or cores is not None:
        found["shareID"] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{device}/{share}"))
        found["consumedCapacity"] = {
            k: v for k, v in (("memory", memory), ("cores", cores)) if v is not None
        }
    return found


def claim(name: str, *results: Obj, namespace: str = "default", pods: tuple[str, ...] = ()) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {},
        "status": {
            "allocation": {"devices": {"results": list(results)}},
            "reservedFor": [{"resource": "pods", "name": p, "uid": f"pod-{p}"} for p in pods],
        },
    }


def pod(
    name: str, *, namespace: str = "default", phase: str = "Running", status: Obj | None = None
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "status": {"phase": phase, **(status or {})},
    }


def taint_rule(name: str, *, key: str, effect: str = "NoSchedule", **selector: str) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {"deviceSelector": selector, "taint": {"key": key, "effect": effect}},
    }


def snapshot(
    slices: list[Obj],
    claims: list[Obj] = (),  # type: ignore[assignment]
    pods: list[Obj] = (),  # type: ignore[assignment]
    rules: list[Obj] = (),  # type: ignore[assignment]
) -> reading.Snapshot:
    return reading.Snapshot(
        slices=list(slices), claims=list(claims), pods=list(pods), taint_rules=list(rules)
    )


def demo(node: str = "node-a") -> reading.Snapshot:
    """The README demo's claims on an 8×A100-40GB node, allocated as the scheduler allocates them."""
    claims = [
        claim("gpu-pod-gpu", result("gpu-0", node=node), pods=("gpu-pod",)),
        claim(
            "mig-pod-mig", result("gpu-1-mig-1g5gb-6", node=node, request="mig"), pods=("mig-pod",)
        ),
        claim(
            "fraction-pod-a-share",
            result("gpu-2-shared", node=node, request="share", memory="10Gi", cores="25"),
            pods=("fraction-pod-a",),
        ),
        claim(
            "fraction-pod-b-share",
            result("gpu-2-shared", node=node, request="share", memory="10Gi", cores="25", share=1),
            pods=("fraction-pod-b",),
        ),
        claim(
            "shared-gpu", result("gpu-3", node=node), pods=("timesliced-pod-a", "timesliced-pod-b")
        ),
    ]
    pods = [pod(p) for c in claims for p in (r["name"] for r in c["status"]["reservedFor"])]
    return snapshot(node_slices(node, "8xA100-40GB"), claims, pods)
