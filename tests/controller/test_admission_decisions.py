"""The webhook's decisions on ResourceClaims and ResourceClaimTemplates (no server).

Covers, table-driven: a good GpuConfig and MigDeviceConfig are allowed; bad configs are denied
with the exact field path from the object's root (``spec.devices.config[1].opaque...``, and
``spec.spec.devices...`` for templates); other drivers' entries are never read; entries that are
not opaque are allowed with a warning and keep the positions of the entries after them; claims
without config, other resources, subresources, DELETE, and an UPDATE that leaves the config as it
was (a finalizer added to an old claim) are allowed; the AdmissionReview answer echoes the uid and
carries the denial as a 422 status.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller import admission

DRIVER = "gpu.dra.dev"
GOOD = {"apiVersion": "gpu.dra.dev/v1alpha1", "kind": "GpuConfig"}
MPS = {
    "apiVersion": "gpu.dra.dev/v1alpha1",
    "kind": "MigDeviceConfig",
    "sharing": {"strategy": "MPS", "mpsConfig": {"defaultActiveThreadPercentage": 50}},
}


def ours(parameters: object, **entry: Any) -> dict[str, Any]:
    return {**entry, "opaque": {"driver": DRIVER, "parameters": parameters}}


def theirs(parameters: object) -> dict[str, Any]:
    return {"opaque": {"driver": "other.example.com", "parameters": parameters}}


def claim(config: list[Any] | None) -> dict[str, Any]:
    devices: dict[str, Any] = {
        "requests": [{"name": "gpu", "exactly": {"deviceClassName": DRIVER}}]
    }
    if config is not None:
        devices["config"] = config
    return {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"devices": devices}}


def template(config: list[Any]) -> dict[str, Any]:
    return {"metadata": {"name": "t"}, "spec": {"spec": claim(config)["spec"]}}


def request(
    obj: object,
    *,
    resource: str = "resourceclaims",
    operation: str = "CREATE",
    old: object = None,
    group: str = "resource.k8s.io",
    sub: str = "",
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "uid": "u-1",
        "resource": {"group": group, "version": "v1", "resource": resource},
        "operation": operation,
        "object": obj,
        "oldObject": old,
    }
    if sub:
        req["subResource"] = sub
    return req


@pytest.mark.parametrize(
    ("req", "message"),
    [
        pytest.param(
            request(claim([ours(GOOD, requests=["gpu"]), ours(MPS)])), None, id="good-configs"
        ),
        pytest.param(request(claim(None)), None, id="no-config"),
        pytest.param(request(claim([])), None, id="empty-config"),
        pytest.param(
            request(claim([theirs("not even an object")])), None, id="other-driver-unread"
        ),
        pytest.param(
            request(claim([theirs({}), ours({**GOOD, "sharing": {"strategy": "Bogus"}})])),
            'spec.devices.config[1].opaque.parameters.sharing.strategy: unsupported strategy "Bogus"',
            id="bad-strategy-after-another-driver",
        ),
        pytest.param(
            request(claim([ours({**GOOD, "color": "red"})])),
            "spec.devices.config[0].opaque.parameters.color: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            request(claim([ours({**GOOD, "apiVersion": "gpu.dra.dev/v9"})])),
            'spec.devices.config[0].opaque.parameters.apiVersion: unsupported apiVersion "gpu.dra.dev/v9"',
            id="unknown-version",
        ),
        pytest.param(
            request(
                claim(
                    [
                        ours(
                            {
                                **MPS,
                                "sharing": {
                                    "strategy": "MPS",
                                    "mpsConfig": {"defaultActiveThreadPercentage": 150},
                                },
                            }
                        )
                    ]
                )
            ),
            "spec.devices.config[0].opaque.parameters.sharing.mpsConfig"
            ".defaultActiveThreadPercentage: must be between 1 and 100",
            id="out-of-range",
        ),
        pytest.param(
            request(claim([ours(GOOD, requests=[7])])),
            "spec.devices.config[0].requests[0]: must be a string",
            id="bad-requests",
        ),
        pytest.param(
            request(claim([ours(None)])),
            "spec.devices.config[0].opaque.parameters: required",
            id="no-parameters",
        ),
        pytest.param(
            request(
                template([ours({**GOOD, "sharing": {"strategy": "Bogus"}})]),
                resource="resourceclaimtemplates",
            ),
            "spec.spec.devices.config[0].opaque.parameters.sharing.strategy",
            id="template-bad",
        ),
        pytest.param(
            request(template([ours(GOOD)]), resource="resourceclaimtemplates"),
            None,
            id="template-good",
        ),
        pytest.param(
            request(claim([{"future": {}}, ours({**GOOD, "kind": "Nope"})])),
            "spec.devices.config[1].opaque.parameters.kind",
            id="non-opaque-keeps-positions",
        ),
    ],
)
def test_decisions(req: dict[str, Any], message: str | None) -> None:
    decision = admission.decide(req, driver=DRIVER)
    if message is None:
        assert decision.allowed, decision.message
    else:
        assert not decision.allowed
        assert decision.message.startswith(f"invalid {DRIVER} config: ")
        assert message in decision.message


BAD = claim([ours({**GOOD, "sharing": {"strategy": "Bogus"}})])


@pytest.mark.parametrize(
    "req",
    [
        pytest.param(request(BAD, operation="DELETE"), id="delete"),
        pytest.param(request(BAD, operation="CONNECT"), id="connect"),
        pytest.param(request(BAD, resource="pods", group=""), id="other-resource"),
        pytest.param(request(BAD, group="example.com"), id="other-group"),
        pytest.param(request(BAD, sub="status"), id="status-subresource"),
        pytest.param(
            request(BAD, operation="UPDATE", old=claim(BAD["spec"]["devices"]["config"])),
            id="update-config-unchanged",
        ),
        pytest.param(request(None), id="no-object"),
    ],
)
def test_allowed_without_looking(req: dict[str, Any]) -> None:
    assert admission.decide(req, driver=DRIVER).allowed


def test_update_that_changes_the_config_is_checked() -> None:
    decision = admission.decide(request(BAD, operation="UPDATE", old=claim([])), driver=DRIVER)
    assert not decision.allowed


def test_non_opaque_entry_is_allowed_with_a_warning() -> None:
    decision = admission.decide(request(claim([{"future": {}}, ours(GOOD)])), driver=DRIVER)
    assert decision.allowed
    (warning,) = decision.warnings
    assert warning.startswith("spec.devices.config[0]: not an opaque config")


def test_review_answers_with_the_uid_and_a_422_status() -> None:
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request(BAD)}
    answer = admission.review(body, driver=DRIVER)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert (
        "spec.devices.config[0].opaque.parameters.sharing.strategy"
        in (response["status"]["message"])
    )

    allowed = admission.review({**body, "request": request(claim(None))}, driver=DRIVER)
    assert allowed["response"] == {"uid": "u-1", "allowed": True}
