"""The quickstart scenario on a kind cluster with the chart installed (``e2e/kind/run.sh``).

The same example objects and the same helpers as the local control-plane runs
(``e2e/test_examples.py``), but with real kubelets, the plugin DaemonSet and the controller of
the chart: every example pod reaches Running, each claim is allocated a device of the type its
class names, and each container's environment (printed by the example's command) names the
device it got. Skipped unless ``GPU_DRA_E2E_KUBECONFIG`` names the cluster's kubeconfig (then
the other scenarios of ``e2e/`` run against the same cluster, through the same fixtures).
"""

from __future__ import annotations

import functools
import time

import pytest

from e2e.harness import clusters, kube, objects

pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(
        clusters.external_kubeconfig() is None, reason="needs a kind cluster (e2e/kind/run.sh)"
    ),
]

KINDS = {"gpu.dra.dev": "gpu-", "mig.gpu.dra.dev": "-mig-", "shared.gpu.dra.dev": "-shared"}


def _running(client: kube.Kube, namespace: str, pod: str) -> bool:
    status = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}").get("status", {})
    return bool(status.get("phase") == "Running")


def test_the_examples_run_on_kind(control_plane: clusters.ExternalCluster) -> None:
    client = control_plane.client()
    namespace = f"kind-e2e-{int(time.time())}"
    objects.create_namespace(client, namespace)
    try:
        documents = objects.example_documents()
        classes = {}
        for doc in documents:
            objects.create_object(client, namespace, doc)
            spec = doc["spec"].get("spec", doc["spec"])
            for request in spec.get("devices", {}).get("requests", []):
                classes[doc["metadata"]["name"]] = request["exactly"]["deviceClassName"]
        pods = [doc for doc in documents if doc["kind"] == "Pod"]
        for pod in pods:
            name = pod["metadata"]["name"]
            kube.wait_for(
                functools.partial(_running, client, namespace, name),
                what=f"{name} running",
                timeout=300,
            )
            for ref in pod["spec"]["resourceClaims"]:
                source = ref.get("resourceClaimName") or ref["resourceClaimTemplateName"]
                claim = objects.pod_claims(client, namespace, name)[ref["name"]]
                devices = objects.allocated_devices(client, namespace, claim)
                assert devices, f"{name}: claim {claim} not allocated"
                assert all(KINDS[classes[source]] in device for device in devices)
                log = client.text(f"/api/v1/namespaces/{namespace}/pods/{name}/log")
                for device in devices:
                    prefix = "GPU_DRA_" + device.upper().replace("-", "_") + "_UUID="
                    assert prefix in log, (name, device)
    finally:
        client.delete(f"/api/v1/namespaces/{namespace}")
