"""Reading what the map is made of from the API server, through the project's REST layer.

One `Snapshot` holds the raw objects (JSON dicts) of one moment: our driver's ResourceSlices,
ResourceClaims, Pods and DeviceTaintRules. Lists are paged (``limit``/``continue``) as kubectl
pages them. DeviceTaintRules are served as ``v1`` from Kubernetes 1.37, ``v1beta2`` or
``v1alpha3`` before (behind a feature gate): the first version served is read, and a cluster that
serves none yields no rules and a note, not an error.

With a namespace, claims are still listed cluster-wide when allowed, because a device held in
another namespace is not free; if that is forbidden, the namespace's claims are read and the map
notes that it may show devices as free that another namespace holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from controller import errors, rest

SLICES = "/apis/resource.k8s.io/v1/resourceslices"
CLAIMS = "/apis/resource.k8s.io/v1/resourceclaims"
PODS = "/api/v1/pods"
TAINT_RULE_VERSIONS = ("v1", "v1beta2", "v1alpha3")
PAGE = "500"


@dataclasses.dataclass(frozen=True)
class Snapshot:
    slices: list[rest.Obj]
    claims: list[rest.Obj]
    pods: list[rest.Obj]
    taint_rules: list[rest.Obj]
    notes: tuple[str, ...] = ()


def read(
    client: rest.Rest, *, driver: str, node: str | None = None, namespace: str | None = None
) -> Snapshot:
    """Everything the map of `driver`'s devices needs (on `node` only, if given)."""
    notes: list[str] = []
    slice_query = {"fieldSelector": f"spec.driver={driver}"}
    pod_query = {}
    if node:
        slice_query["fieldSelector"] += f",spec.nodeName={node}"
        pod_query["fieldSelector"] = f"spec.nodeName={node}"
    slices = list(_items(client, SLICES, slice_query))
    claims = _claims(client, namespace, notes)
    pods_path = f"/api/v1/namespaces/{namespace}/pods" if namespace else PODS
    pods = list(_items(client, pods_path, pod_query))
    rules = _taint_rules(client, notes)
    return Snapshot(slices=slices, claims=claims, pods=pods, taint_rules=rules, notes=tuple(notes))


def _claims(client: rest.Rest, namespace: str | None, notes: list[str]) -> list[rest.Obj]:
    try:
        return list(_items(client, CLAIMS, {}))
    except errors.RejectedError:
        if namespace is None:
            raise
    notes.append(
        f"claims could only be read in namespace {namespace}: devices held in other "
        "namespaces may be shown as free"
    )
    path = f"/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims"
    return list(_items(client, path, {}))


def _taint_rules(client: rest.Rest, notes: list[str]) -> list[rest.Obj]:
    for version in TAINT_RULE_VERSIONS:
        try:
            return list(_items(client, f"/apis/resource.k8s.io/{version}/devicetaintrules", {}))
        except errors.NotFoundError:
            continue
        except errors.RejectedError as exc:  # forbidden: the rest of the map is still right
            notes.append(f"DeviceTaintRules not readable ({exc.status}): their taints not shown")
            return []
    notes.append("DeviceTaintRules are not served by this cluster: no taint rules shown")
    return []


def _items(client: rest.Rest, path: str, query: dict[str, str]) -> Iterator[rest.Obj]:
    query = {**query, "limit": PAGE}
    while True:
        page = client.get(path, **query)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return
        query["continue"] = token
