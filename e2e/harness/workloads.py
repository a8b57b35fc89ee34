"""Pods for nodes with a real container runtime, and what their containers reported.

A node with a `containerd.Containerd` runs the pod's containers from the test image
(`images`); the fake kubelet puts the first JSON line each container printed into its record as
``containers[<name>].seen`` (`seen`), with ``state`` and, once exited, ``exitCode``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from e2e.harness import images, kube, nodeagents, objects


def create_probe_pod(
    client: kube.Kube,
    namespace: str,
    name: str,
    *,
    node: str,
    image: str,
    claims: Sequence[str] = (),
    command: Sequence[str] = (images.PROBE_PATH,),
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> kube.Obj:
    """A pod on `node` with one container ``main`` running `command` from `image`, using the
    named ResourceClaims (all of them in ``main``)."""
    container = objects.Container(
        claims=claims, image=image, command=command, args=args, env=env or {}
    )
    body = objects.pod_body(name, node=node, containers=[container], grace=5)
    return client.create(f"/api/v1/namespaces/{namespace}/pods", body)


def seen(node: nodeagents.PluginNode, namespace: str, pod: str, container: str = "main") -> Any:
    """What the container reported (its first JSON line), or None (not yet, or no record)."""
    record = node.record(namespace, pod)
    if record is None:
        return None
    return record.get("containers", {}).get(container, {}).get("seen")


def wait_seen(
    node: nodeagents.PluginNode,
    namespace: str,
    pod: str,
    container: str = "main",
    *,
    timeout: float = 60,
) -> Any:
    """Wait until the container has reported; what it saw. A failed start fails at once."""

    def check() -> Any:
        record = node.record(namespace, pod)
        if record is not None and record.get("error", "").startswith("start containers"):
            raise RuntimeError(f"{namespace}/{pod}: {record['error']}")
        return seen(node, namespace, pod, container)

    return kube.wait_for(check, what=f"{namespace}/{pod} {container} reported", timeout=timeout)


def container_record(
    node: nodeagents.PluginNode, namespace: str, pod: str, container: str = "main"
) -> dict[str, Any]:
    """The container's record (CDI resolution plus runtime fields); {} without a record."""
    record = node.record(namespace, pod) or {}
    value: dict[str, Any] = record.get("containers", {}).get(container, {})
    return value


def pod_deleted(client: kube.Kube, namespace: str, name: str) -> bool:
    return client.missing(f"/api/v1/namespaces/{namespace}/pods/{name}")


def delete_gracefully(client: kube.Kube, namespace: str, name: str, *, timeout: float = 60) -> None:
    """Delete the pod as a user would (grace period of the pod), and wait until it is gone: the
    fake kubelet stops its containers, unprepares its claims, then removes it."""
    client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    kube.wait_for(
        functools.partial(pod_deleted, client, namespace, name),
        what=f"pod {namespace}/{name} deleted",
        timeout=timeout,
    )
