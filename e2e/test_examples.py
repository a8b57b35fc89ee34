"""The quickstart examples of ``deploy/examples/`` work as the documentation says.

Covers: every example object applies on a fake 8×A100-40GB node, every pod is scheduled, and each
claim gets a device of the type its class names (whole GPU, MIG slice, shared fraction), with the
two pods of the time-sliced and of the MPS example each sharing one claim and one GPU.
"""

from __future__ import annotations

import copy

import pytest

from e2e.conftest import Scenario
from e2e.harness import objects

pytestmark = pytest.mark.e2e

KINDS = {"gpu.dra.dev": "gpu-", "mig.gpu.dra.dev": "-mig-", "shared.gpu.dra.dev": "-shared"}


def test_every_example_schedules_onto_the_device_type_it_asks_for(scenario: Scenario) -> None:
    node = scenario.node("8xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    documents = objects.example_documents()
    assert {doc["kind"] for doc in documents} == {"Pod", "ResourceClaim", "ResourceClaimTemplate"}
    classes = {}
    for doc in documents:
        body = copy.deepcopy(doc)
        if body["kind"] == "Pod":
            body["spec"]["nodeSelector"] = {objects.HOSTNAME: node}
        objects.create_object(client, ns, body)
        spec = body["spec"].get("spec", body["spec"])  # a template wraps the claim spec
        for request in spec.get("devices", {}).get("requests", []):
            classes[body["metadata"]["name"]] = request["exactly"]["deviceClassName"]
    pods = [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Pod"]
    assert len(pods) >= 4
    devices: dict[str, list[str]] = {}
    for pod in pods:
        objects.wait_scheduled(client, ns, pod)
        pod_doc = next(d for d in documents if d["metadata"]["name"] == pod)
        for ref in pod_doc["spec"]["resourceClaims"]:
            source = ref.get("resourceClaimName") or ref["resourceClaimTemplateName"]
            claim = objects.pod_claims(client, ns, pod)[ref["name"]]
            allocated = objects.allocated_devices(client, ns, claim)
            assert allocated, f"{pod}: claim {claim} not allocated"
            assert all(KINDS[classes[source]] in device for device in allocated), allocated
            devices[pod] = allocated
    assert devices["timesliced-pod-a"] == devices["timesliced-pod-b"]
    assert devices["mps-pod-a"] == devices["mps-pod-b"]
