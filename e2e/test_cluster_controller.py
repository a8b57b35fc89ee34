"""The cluster controller against the real kube-apiserver, scheduler and garbage collector.

Covers:
- slice garbage collection, run as the real process (``python -m controller``): slices of a Node
  that never existed go at start; slices of a Node deleted while the controller runs go on the
  Node's delete event (the log shows the event and the controller's deletions, long before its
  periodic pass could run); slices of a Node that exists stay. The slices are published without an owner reference,
  so the cluster's own garbage collector cannot be the one removing them. SIGTERM ends the
  process with code 0 and the Lease released;
- DeviceClasses by server-side apply: an admin's label survives a re-apply while an extra
  selector does not (``selectors`` is an atomic list); the extended resource name comes and goes
  with the flag; the three classes select whole GPUs, MIG slices and shares of our pool;
- the admission webhook on 127.0.0.1 with a self-signed certificate, registered through a
  ValidatingWebhookConfiguration limited to the scenario's namespace: a claim and a template
  with a bad GpuConfig are refused with the field path in the API server's message; a good
  config and another driver's config are created;
- the extended resource: a pod with ``resources.limits: {gpu.dra.dev/gpu: 1}`` and no claim is
  scheduled onto one of our whole GPUs through the claim the scheduler makes for it;
- leader election between two candidates: exactly one leads; the leader's clean stop releases
  the Lease and the other takes the released Lease over (it sees it held by nobody: a successor
  that waited for the Lease to expire would not); nothing here is timed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import config
from structlog.testing import capture_logs

from controller import deviceclasses, leaderelection, leases, rest, webhook
from e2e.conftest import Scenario
from e2e.harness import kube, objects

pytestmark = pytest.mark.e2e

DRIVER = objects.DRIVER
CLASSES = "/apis/resource.k8s.io/v1/deviceclasses"
REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def api(scenario: Scenario) -> Iterator[rest.Rest]:
    """The controller's own client (the official client, plain JSON) with admin credentials."""
    with config.new_client_from_config(str(scenario.plane.kubeconfig)) as client:
        yield rest.Rest(client)


def _lease(scenario: Scenario, name: str = "gpu-dra-controller") -> kube.Obj | None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{scenario.namespace}/leases/{name}"
    return scenario.client.get(path) if scenario.client.exists(path) else None


def _holder(scenario: Scenario) -> str | None:
    lease = _lease(scenario)
    holder: str | None = ((lease or {}).get("spec") or {}).get("holderIdentity") or None
    return holder


@contextlib.contextmanager
def _controller_process(scenario: Scenario, log: pathlib.Path, *args: str) -> Iterator[None]:
    """``python -m controller`` with the admin kubeconfig, its Lease in the scenario's namespace."""
    command = [
        sys.executable,
        "-m",
        "controller",
        f"--kubeconfig={scenario.plane.kubeconfig}",
        f"--namespace={scenario.namespace}",
        "--identity=e2e",
        "--log-format=json",
        "--log-level=debug",
        *args,
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
    try:
        yield
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_slices_of_vanished_nodes_are_collected(scenario: Scenario, tmp_path: pathlib.Path) -> None:
    client = scenario.client
    ghost = f"{scenario.namespace}-never-existed"
    objects.publish_unowned_slices(client, ghost, gpus="1xA100-40GB")
    scenario.nodes.append(ghost)  # teardown removes leftovers by nodeName
    leaving = f"{scenario.namespace}-leaving"
    objects.create_node(client, leaving)
    scenario.nodes.append(leaving)
    objects.publish_unowned_slices(client, leaving, gpus="2xA100-40GB")
    staying = scenario.node("1xA100-40GB")
    staying_slices = objects.node_slices(client, staying)
    assert objects.node_slices(client, ghost)
    leaving_slices = objects.node_slices(client, leaving)
    assert leaving_slices

    log = tmp_path / "controller.log"
    with _controller_process(scenario, log, "--gc-interval=3600"):
        kube.wait_for(functools.partial(_holder, scenario), what="controller leads", timeout=10)
        kube.wait_for(lambda: objects.node_slices(client, ghost) == [], what="ghost's slices gone")
        assert objects.node_slices(client, leaving), "a node that exists keeps its slices"
        client.delete(f"/api/v1/nodes/{leaving}")
        kube.wait_for(
            lambda: objects.node_slices(client, leaving) == [],
            what="deleted node's slices gone",  # the periodic pass is an hour away
        )
        assert objects.node_slices(client, staying) == staying_slices
    lease = _lease(scenario)
    assert lease is not None
    assert not lease["spec"].get("holderIdentity"), "a clean stop releases the Lease"
    # The controller saw the delete event and removed the slices itself, in a pass that event woke
    # (a pass still running from the start may have been quicker: the order is not fixed).
    about_leaving = [e for e in _log_events(log) if e.get("node") == leaving]
    assert [e["event"] for e in about_leaving].count("slicegc.node_deleted") == 1
    deleted = [e["slice"] for e in about_leaving if e["event"] == "slicegc.deleted"]
    assert sorted(deleted) == leaving_slices


def _log_events(log: pathlib.Path) -> list[dict[str, Any]]:
    """The JSON events of a controller's log, in order (other lines skipped)."""
    events = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and "event" in event:
                events.append(event)
    return events


def _selectors(stored: kube.Obj) -> list[str]:
    return [s["cel"]["expression"] for s in stored["spec"]["selectors"]]


def test_device_classes_by_server_side_apply(scenario: Scenario, api: rest.Rest) -> None:
    client = scenario.client
    ours = deviceclasses.build(DRIVER)
    deviceclasses.apply(api, ours)
    path = f"{CLASSES}/{DRIVER}"
    extra = 'device.attributes["gpu.dra.dev"].productName != ""'
    client.merge_patch(
        path,
        {
            "metadata": {"labels": {"team": "ml"}},
            "spec": {"selectors": [*ours[0]["spec"]["selectors"], {"cel": {"expression": extra}}]},
        },
    )

    (stored, *_) = deviceclasses.apply(api, ours)
    assert stored["metadata"]["labels"] == {"team": "ml"}
    assert _selectors(stored) == _selectors(ours[0])  # an atomic list: ours replaces theirs
    managers = {(f["manager"], f["operation"]) for f in stored["metadata"]["managedFields"]}
    assert ("gpu-dra-controller", "Apply") in managers

    (with_name, *_) = deviceclasses.apply(
        api, deviceclasses.build(DRIVER, extended_resource_name="gpu.dra.dev/gpu")
    )
    assert with_name["spec"]["extendedResourceName"] == "gpu.dra.dev/gpu"
    (without, *_) = deviceclasses.apply(api, ours)
    assert "extendedResourceName" not in without["spec"]
    assert without["metadata"]["labels"] == {"team": "ml"}
    unchanged = client.get(path)["metadata"]["resourceVersion"]
    deviceclasses.apply(api, ours)
    assert client.get(path)["metadata"]["resourceVersion"] == unchanged, "a no-op apply"

    node = scenario.node("3xA100-40GB")
    gpu, mig, shared = (c["metadata"]["name"] for c in ours)
    profile = 'device.attributes["gpu.dra.dev"].profile == "1g.5gb"'
    scenario.schedule(node, "whole", [objects.request("gpu", gpu)])
    scenario.schedule(node, "slice", [objects.request("mig", mig, selectors=[profile])])
    scenario.schedule(node, "share", [objects.request("s", shared, capacity={"memory": "1Gi"})])
    assert re.fullmatch(r"gpu-\d", scenario.device("whole"))
    assert re.fullmatch(r"gpu-\d-mig-1g5gb-\d", scenario.device("slice"))
    assert re.fullmatch(r"gpu-\d-shared", scenario.device("share"))


def _self_signed(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=gpu-dra-webhook",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _gpu_config(strategy: str) -> dict[str, Any]:
    return {
        "requests": ["gpu"],
        "opaque": {
            "driver": DRIVER,
            "parameters": {
                "apiVersion": "gpu.dra.dev/v1alpha1",
                "kind": "GpuConfig",
                "sharing": {"strategy": strategy, "timeSlicingConfig": {"interval": "Long"}},
            },
        },
    }


def _claim(name: str, config: list[dict[str, Any]]) -> kube.Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {"requests": [objects.request("gpu", DRIVER)], "config": config}},
    }


def _refusal(client: kube.Kube, path: str, body: kube.Obj) -> str | None:
    """The API server's message if it refuses `body`, else None (nothing kept: a dry run)."""
    try:
        client.create(f"{path}?dryRun=All", body)
    except kube.KubeError as exc:
        status = json.loads(str(exc).split(": HTTP 422: ", 1)[1])
        message: str = status["message"]
        return message
    return None


@contextlib.contextmanager
def _registered(client: kube.Kube, namespace: str, url: str, ca: bytes) -> Iterator[None]:
    name = f"gpu-dra-{namespace}"
    client.merge_patch(
        f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": {"gpu.dra.dev/e2e": namespace}}}
    )
    rule = {
        "apiGroups": ["resource.k8s.io"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["resourceclaims", "resourceclaimtemplates"],
        "scope": "Namespaced",
    }
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "claims.gpu.dra.dev",
                "clientConfig": {"url": url, "caBundle": base64.b64encode(ca).decode()},
                "rules": [rule],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
                "namespaceSelector": {"matchLabels": {"gpu.dra.dev/e2e": namespace}},
            }
        ],
    }
    path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
    client.create(path, body)
    try:
        yield
    finally:
        client.delete(f"{path}/{name}")


def test_webhook_refuses_bad_configs_with_the_field_path(
    scenario: Scenario, tmp_path: pathlib.Path
) -> None:
    client, ns = scenario.client, scenario.namespace
    cert, key = _self_signed(tmp_path)
    server = webhook.Webhook(
        address="127.0.0.1", port=0, certificates=webhook.Certificates(cert, key), driver=DRIVER
    )
    server.start()
    claims = f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims"
    templates = f"/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaimtemplates"
    bad = _claim("bad", [_gpu_config("Bogus")])
    try:
        with _registered(
            client, ns, f"https://127.0.0.1:{server.port}/validate", cert.read_bytes()
        ):
            # The API server picks the configuration up within a moment.
            message = kube.wait_for(
                functools.partial(_refusal, client, claims, bad), what="webhook active", timeout=10
            )
            assert 'admission webhook "claims.gpu.dra.dev" denied the request' in message
            assert (
                "spec.devices.config[0].opaque.parameters.sharing.strategy: "
                'unsupported strategy "Bogus"'
            ) in message
            with pytest.raises(kube.KubeError) as refused:
                client.create(claims, bad)
            assert refused.value.status == 422  # the status code the webhook answered with

            template = {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaimTemplate",
                "metadata": {"name": "bad"},
                "spec": {"spec": bad["spec"]},
            }
            with pytest.raises(kube.KubeError, match=r"spec\.spec\.devices\.config\[0\]\.opaque"):
                client.create(templates, template)

            client.create(claims, _claim("good", [_gpu_config("TimeSlicing")]))
            other = {"opaque": {"driver": "other.example.com", "parameters": {"any": "thing"}}}
            client.create(claims, _claim("other-driver", [other]))
            assert {c["metadata"]["name"] for c in client.items(claims)} == {"good", "other-driver"}
    finally:
        server.stop()


def test_extended_resource_is_served_by_a_whole_gpu(scenario: Scenario, api: rest.Rest) -> None:
    client, ns = scenario.client, scenario.namespace
    deviceclasses.apply(api, deviceclasses.build(DRIVER, extended_resource_name="gpu.dra.dev/gpu"))
    node = scenario.node("2xA100-40GB")
    assert "gpu.dra.dev/gpu" not in client.get(f"/api/v1/nodes/{node}")["status"]["allocatable"]
    client.create(
        f"/api/v1/namespaces/{ns}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "legacy"},
            "spec": {
                "nodeSelector": {objects.HOSTNAME: node},
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": "pause",
                        "resources": {"limits": {"gpu.dra.dev/gpu": "1"}},
                    }
                ],
            },
        },
    )
    assert objects.wait_scheduled(client, ns, "legacy", timeout=20) == node
    pod = client.get(f"/api/v1/namespaces/{ns}/pods/legacy")
    status = pod["status"]["extendedResourceClaimStatus"]
    claim = status["resourceClaimName"]
    assert [m["resourceName"] for m in status["requestMappings"]] == ["gpu.dra.dev/gpu"]
    (result,) = objects.allocation(client, ns, claim)
    assert result["driver"] == DRIVER
    assert result["device"] in {"gpu-0", "gpu-1"}


def test_leader_election_one_leader_and_the_released_lease_taken_over(
    scenario: Scenario, api: rest.Rest
) -> None:
    timing = leaderelection.Timing(lease_duration=4, renew_deadline=3, retry_period=0.5)
    store = leases.ApiLeaseStore(api, namespace=scenario.namespace, name="e2e-lease")
    leading: dict[str, int] = {"a": 0, "b": 0}

    def candidate(name: str) -> leaderelection.LeaderElection:
        def started() -> None:
            leading[name] += 1

        def stopped() -> None:
            leading[name] -= 1

        elector = leaderelection.Elector(store, identity=name, timing=timing)
        return leaderelection.LeaderElection(
            elector, timing=timing, on_started_leading=started, on_stopped_leading=stopped
        )

    elections = {name: candidate(name) for name in leading}
    threads = {
        name: threading.Thread(target=election.run, name=f"candidate-{name}")
        for name, election in elections.items()
    }
    for thread in threads.values():
        thread.start()
    try:
        first = kube.wait_for(
            lambda: next((n for n, e in elections.items() if e.leading), None),
            what="a leader",
            timeout=5,
        )
        deadline = time.monotonic() + timing.lease_duration
        while time.monotonic() < deadline:  # several renewals: never two leaders
            assert sorted(leading.values()) == [0, 1], leading
            time.sleep(0.05)
        second = "b" if first == "a" else "a"
        assert not elections[second].leading

        with capture_logs() as logs:
            elections[first].stop()
            threads[first].join()
            assert leading[first] == 0
            kube.wait_for(lambda: elections[second].leading, what="takeover", timeout=30)
        # The successor found the Lease released (held by nobody), not expired: without the
        # release it would have seen the first holder until the lease ran out, then taken over.
        assert ("leader.released", first) in [(e["event"], e.get("me")) for e in logs]
        holders_seen = [
            e.get("holder") for e in logs if e["event"] == "leader.observed" and e["me"] == second
        ]
        assert holders_seen == [None, second], "the successor saw the Lease released, then its own"
        lease = scenario.client.get(
            f"/apis/coordination.k8s.io/v1/namespaces/{scenario.namespace}/leases/e2e-lease"
        )
        assert lease["spec"]["holderIdentity"] == second
        assert lease["spec"]["leaseTransitions"] == 1  # created by the first, taken by the second
    finally:
        for election in elections.values():
            election.stop()
        for thread in threads.values():
            thread.join()
