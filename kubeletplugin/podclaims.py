"""Which claims each container of a pod uses, read from the pod, to refuse MPS daemon collisions.

Only needed when the claims of one NodePrepareResources call are served by more than one MPS
daemon (`dra_driver.mpsclients`), which is rare: then the plugin reads the pods the claims are
reserved for (``status.reservedFor``) and maps each container's ``resources.claims`` (by the
pod's ``resourceClaims`` entry, and an optional request) to claim UIDs: a ``resourceClaimName``
directly, a template's generated claim through ``status.resourceClaimStatuses``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controller import errors, rest
from dra_driver import claims, mpsclients
from dra_driver.checkpoint import model
from kubeletplugin import claimfetching

GetPod = Callable[[str, str], dict[str, Any] | None]
"""(namespace, name) → the pod as JSON, or None if it is gone; `claims.ClaimError` if it cannot
be read now."""


def pod_getter(client: rest.Rest) -> GetPod:
    """Pods read through the project's REST layer, its errors as a claim's, each read bounded
    like a claim's (it happens within the same kubelet call)."""

    def get_pod(namespace: str, name: str) -> dict[str, Any] | None:
        try:
            path = f"/api/v1/namespaces/{namespace}/pods/{name}"
            return dict(client.request("GET", path, timeout=claimfetching.TIMEOUT))
        except errors.NotFoundError:
            return None
        except errors.ApiError as exc:
            raise claims.ClaimError(f"reading pod {namespace}/{name} failed: {exc}") from exc

    return get_pod


def containers(
    pod: Mapping[str, Any], uids: Mapping[tuple[str, str], claims.ClaimUID]
) -> list[mpsclients.ContainerClaims]:
    """The pod's containers (init containers too) with the claims of `uids` they use;
    `uids` maps (namespace, claim name) to UID."""
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    namespace = metadata.get("namespace", "")
    generated = {
        status.get("name"): status.get("resourceClaimName")
        for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []
    }
    claim_of = {
        entry.get("name"): entry.get("resourceClaimName") or generated.get(entry.get("name"))
        for entry in spec.get("resourceClaims") or []
    }
    found = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        uses = []
        for use in (container.get("resources") or {}).get("claims") or []:
            uid = uids.get((namespace, claim_of.get(use.get("name")) or ""))
            if uid is not None:
                uses.append((uid, use.get("request") or None))
        if uses:
            where = f"container {container.get('name')} of pod {namespace}/{metadata.get('name')}"
            found.append(mpsclients.ContainerClaims(name=where, uses=tuple(uses)))
    return found


def mixed_daemons(
    objects: Mapping[claims.ClaimUID, Mapping[str, Any]],
    prepared: Mapping[claims.ClaimUID, Sequence[model.PreparedDevice]],
    *,
    get_pod: GetPod,
) -> dict[claims.ClaimUID, str]:
    """The prepared claims that share a container with devices of another MPS daemon, with why.

    `objects` are the claims as read from the API server; no pod is read unless the prepared
    devices are served by two daemons or more."""
    served = set().union(*(mpsclients.daemons(devices) for devices in prepared.values()))
    if len(served) < 2:
        return {}
    uids: dict[tuple[str, str], claims.ClaimUID] = {}
    pods: set[tuple[str, str, str]] = set()
    for uid, obj in objects.items():
        metadata = obj.get("metadata") or {}
        uids[(metadata.get("namespace", ""), metadata.get("name", ""))] = uid
        for consumer in (obj.get("status") or {}).get("reservedFor") or []:
            if consumer.get("resource") == "pods" and not consumer.get("apiGroup"):
                pods.add((metadata.get("namespace", ""), consumer["name"], consumer.get("uid")))
    names = {uid: f"{namespace}/{name}" for (namespace, name), uid in uids.items()}
    refused: dict[claims.ClaimUID, str] = {}
    for namespace, name, pod_uid in sorted(pods):
        pod = get_pod(namespace, name)
        if pod is None or (pod.get("metadata") or {}).get("uid") != pod_uid:
            continue
        found = mpsclients.conflicts(containers(pod, uids), prepared, names)
        for uid, message in found.items():
            refused.setdefault(uid, message)
    return refused
