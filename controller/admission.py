"""Admission decisions for ResourceClaims and ResourceClaimTemplates: are our opaque configs valid?

The webhook (`webhook`) hands each ``admission.k8s.io/v1`` AdmissionReview to `review`, which
answers with the same review's ``response``. A claim (``spec.devices.config``) or template
(``spec.spec.devices.config``) is denied when one of its opaque config entries for our driver does
not decode (`api.configentries`, the same strict decoding the node applies at prepare), with the
field path in the message:
``spec.devices.config[0].opaque.parameters.sharing.strategy: unsupported strategy "Bogus"; ...``.
So a user learns at ``kubectl apply`` what would otherwise fail the pod at start on the node.

Everything else is allowed: other drivers' entries (never read), other kinds and resources,
operations other than CREATE and UPDATE, and an UPDATE that leaves the config list as it was (a
finalizer or label change on a claim created before the webhook existed must not be blocked:
the scheduler and the claim controller write such updates). An entry that is not opaque (a config
type newer than this driver) is allowed with a warning: it may belong to another driver, and the
node fails the claim anyway should it reach our devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from api import configentries, errors

Obj = dict[str, Any]

GROUP = "resource.k8s.io"
CONFIG_PATHS = {
    "resourceclaims": ("spec", "devices"),
    "resourceclaimtemplates": ("spec", "spec", "devices"),
}
CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})

# A stand-in for an entry that is not opaque: decodes as some other driver's entry, so the list
# keeps its positions (and the paths in messages stay right) while the entry itself is skipped.
_FOREIGN = {"opaque": {"driver": "", "parameters": {}}}


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    warnings: tuple[str, ...] = ()


def review(body: Obj, *, driver: str) -> Obj:
    """The AdmissionReview answering `body` (an AdmissionReview with a ``request``)."""
    request = body.get("request") or {}
    decision = decide(request, driver=driver)
    response: Obj = {"uid": request.get("uid", ""), "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {
            "code": 422,
            "reason": "Invalid",
            "message": decision.message,
        }
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    return {
        "apiVersion": body.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }


def decide(request: Obj, *, driver: str) -> Decision:
    """Allow or deny one admission request (the ``request`` of an AdmissionReview)."""
    resource = request.get("resource") or {}
    path = CONFIG_PATHS.get(resource.get("resource", ""))
    if (
        resource.get("group") != GROUP
        or path is None
        or request.get("subResource")
        or request.get("operation") not in CHECKED_OPERATIONS
    ):
        return Decision(allowed=True)
    config = _config(request.get("object"), path)
    if request.get("operation") == "UPDATE" and config == _config(request.get("oldObject"), path):
        return Decision(allowed=True)
    return _check(config, driver=driver, prefix=".".join(path))


def _config(obj: object, path: tuple[str, ...]) -> object:
    """The ``config`` list under `path` in `obj` (None where any level is missing)."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj.get("config") if isinstance(obj, dict) else None


def _check(config: object, *, driver: str, prefix: str) -> Decision:
    warnings = []
    if isinstance(config, list):
        masked = []
        for index, entry in enumerate(config):
            opaque = not isinstance(entry, dict) or entry.get("opaque") is not None
            masked.append(entry if opaque else _FOREIGN)
            if not opaque:
                warnings.append(
                    f"{prefix}.config[{index}]: not an opaque config; the {driver} driver cannot "
                    "read it and fails the claim if it is allocated one of its devices"
                )
        config = masked
    try:
        with errors.prefixed(prefix):
            configentries.decode(config, driver=driver, source=configentries.ConfigSource.CLAIM)
    except errors.ConfigError as err:
        return Decision(allowed=False, message=f"invalid {driver} config: {err}")
    return Decision(allowed=True, warnings=tuple(warnings))
