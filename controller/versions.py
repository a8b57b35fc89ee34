"""Which ``resource.k8s.io`` version to talk, and ResourceSlices in each version's shape.

The driver thinks in ``v1``. A server of 1.34 or newer serves ``v1``; one that does not (an older
server, or ``v1`` switched off) is talked to in ``v1beta2`` (field for field the same as ``v1``)
or ``v1beta1`` (the same fields, but each device's fields wrapped in ``basic``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from controller import errors

PREFERRED = ("v1", "v1beta2", "v1beta1")

Obj = dict[str, Any]


def choose(served: Sequence[str]) -> str:
    for version in PREFERRED:
        if version in served:
            return version
    raise errors.RejectedError(
        f"the API server serves resource.k8s.io {list(served)}; this driver needs one of "
        f"{list(PREFERRED)} (Kubernetes 1.32 or newer)"
    )


def slices_path(version: str) -> str:
    return f"/apis/resource.k8s.io/{version}/resourceslices"


def to_server(obj: Obj, version: str) -> Obj:
    """A ResourceSlice object (v1 shape) as `version` expects it."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = f"resource.k8s.io/{version}"
    if version == "v1beta1" and "devices" in out.get("spec", {}):
        out["spec"]["devices"] = [
            {"name": d["name"], "basic": {k: v for k, v in d.items() if k != "name"}}
            for d in out["spec"]["devices"]
        ]
    return out


def from_server(obj: Obj, version: str) -> Obj:
    """A ResourceSlice object read in `version`, in the v1 shape."""
    if version != "v1beta1" or "devices" not in obj.get("spec", {}):
        return obj
    out = copy.deepcopy(obj)
    out["spec"]["devices"] = [
        {"name": d["name"], **(d.get("basic") or {})} for d in out["spec"]["devices"]
    ]
    return out
