"""Which claims each container of a pod uses, and when the plugin reads pods at all.

Covers: claims named directly and through a template (``status.resourceClaimStatuses``), a
request filter, init containers, containers and claims not in the batch left out; no pod is read
while the batch's devices are served by fewer than two MPS daemons; a pod reserved for but since
replaced (another UID) or gone is not held against the claims; a conflicting pod refuses both.
"""

from __future__ import annotations

from typing import Any

from dra_driver import claims
from dra_driver.checkpoint import model
from kubeletplugin import podclaims

A, B = claims.ClaimUID("uid-a"), claims.ClaimUID("uid-b")
UIDS = {("ns", "claim-a"): A, ("ns", "pod-b-gpu-x1z"): B}


def _pod(*containers: dict[str, Any], uid: str = "pod-uid") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "pod", "uid": uid},
        "spec": {
            "resourceClaims": [
                {"name": "a", "resourceClaimName": "claim-a"},
                {"name": "b", "resourceClaimTemplateName": "template"},
                {"name": "other", "resourceClaimName": "not-in-batch"},
            ],
            "initContainers": [{"name": "init", "resources": {"claims": [{"name": "a"}]}}],
            "containers": list(containers),
        },
        "status": {"resourceClaimStatuses": [{"name": "b", "resourceClaimName": "pod-b-gpu-x1z"}]},
    }


def _uses(*claims_: dict[str, str]) -> dict[str, Any]:
    return {"name": "main", "resources": {"claims": list(claims_)}}


def test_containers_map_their_claims_to_uids() -> None:
    pod = _pod(
        _uses({"name": "a"}, {"name": "b", "request": "gpu"}, {"name": "other"}),
        {"name": "sidecar"},
    )

    found = podclaims.containers(pod, UIDS)

    assert [(c.name, c.uses) for c in found] == [
        ("container init of pod ns/pod", ((A, None),)),
        ("container main of pod ns/pod", ((A, None), (B, "gpu"))),
    ]


def _device(daemon: str) -> model.PreparedDevice:
    return model.PreparedDevice(
        request_names=("gpu",),
        pool="node",
        device="gpu-0-shared",
        share_id="s",
        cdi_ids=(),
        gpu_uuid="GPU-x",
        isolation=model.Isolation(
            mps=model.MpsAttachment(daemon=daemon, pipe_dir="/pipe", shm_dir=None, exclusive=True)
        ),
    )


def _claim(name: str, pod_uid: str = "pod-uid") -> dict[str, Any]:
    reserved = [{"resource": "pods", "name": "pod", "uid": pod_uid}]
    return {"metadata": {"namespace": "ns", "name": name}, "status": {"reservedFor": reserved}}


OBJECTS = {A: _claim("claim-a"), B: _claim("pod-b-gpu-x1z")}


def test_no_pod_is_read_while_one_daemon_serves_the_batch() -> None:
    def get_pod(namespace: str, name: str) -> dict[str, Any] | None:
        raise AssertionError("read a pod")

    prepared = {A: [_device("gpu-0")], B: [_device("gpu-0")]}
    assert podclaims.mixed_daemons(OBJECTS, prepared, get_pod=get_pod) == {}


def test_a_container_using_both_daemons_refuses_both_claims() -> None:
    pods = {"pod": _pod(_uses({"name": "a"}, {"name": "b"}))}
    prepared = {A: [_device("gpu-0")], B: [_device("gpu-1")]}

    refused = podclaims.mixed_daemons(
        OBJECTS, prepared, get_pod=lambda namespace, name: pods.get(name)
    )

    assert set(refused) == {A, B}
    assert "gpu-0 (ns/claim-a), gpu-1 (ns/pod-b-gpu-x1z)" in refused[A]


def test_a_replaced_or_gone_pod_refuses_nothing() -> None:
    prepared = {A: [_device("gpu-0")], B: [_device("gpu-1")]}
    replaced = _pod(_uses({"name": "a"}, {"name": "b"}), uid="another-uid")

    assert podclaims.mixed_daemons(OBJECTS, prepared, get_pod=lambda ns, name: replaced) == {}
    assert podclaims.mixed_daemons(OBJECTS, prepared, get_pod=lambda ns, name: None) == {}
