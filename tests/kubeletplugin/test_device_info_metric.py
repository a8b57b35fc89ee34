"""The info metric that names, per prepared device, its GPU (as dcgm-exporter does) and its pods.

Covers: a whole GPU and a MIG slice prepared through the real gRPC service are one series each,
with the GPU's UUID under dcgm-exporter's label ``UUID`` (the parent's for the MIG slice), the
MIG slice's GPU instance ID and profile as the fake backend reports them, the claim, and the pods
the claim was last read reserved for (several in one label, sorted); an unprepared claim's series
and pod names go; shares and admin access are not ``exclusive`` (one ``UUID, GPU_I_ID`` has at
most one exclusive series, so a join on it never matches two claims); a static MIG device gets
its instance ID from the backend, asked once; a backend that cannot tell leaves a dynamic
device's recorded instance ID (logged once, asked again next scrape); pods come only from
``reservedFor`` entries that are pods, and a claim never read has none. The claim reads that
feed the pod names (`claimfetching.ClaimFetcher`'s ``on_read``) are checked in
``tests/kubeletplugin/test_claim_fetching.py``; the whole path on a real cluster in
``e2e/test_device_attribution.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import prometheus_client
import pytest
from structlog.testing import capture_logs

from dra_driver import claims, hardware
from dra_driver.backends import errors as backend_errors
from dra_driver.checkpoint import model
from kubeletplugin import devicemetrics, reservations
from tests.kubeletplugin import claimbook, pluginserver

GPU = "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e"
MIG = "MIG-11111111-2222-3333-4444-555555555555"


def _series(registry: prometheus_client.CollectorRegistry) -> list[dict[str, str]]:
    return [
        dict(sample.labels)
        for family in registry.collect()
        if family.name == devicemetrics.NAME
        for sample in family.samples
        if sample.value == 1
    ]


def _reserved(obj: dict[str, Any], *pods: str) -> dict[str, Any]:
    consumers = [{"resource": "pods", "name": pod, "uid": f"uid-{pod}"} for pod in pods]
    return {**obj, "status": {**obj["status"], "reservedFor": consumers}}


def test_a_whole_gpu_and_a_mig_slice_name_their_gpu_claim_and_pods(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    pods = reservations.Reservations()
    registry = prometheus_client.CollectorRegistry()
    registry.register(
        devicemetrics.DeviceInfoCollector(
            plugin.preparer.completed_claims,
            pods=pods,
            mig_instances=lambda gpu: plugin.backend.status(gpu).mig_instances,
        )
    )
    whole = _reserved(claimbook.claim("u-whole", claimbook.gpu(1)), "trainer")
    sliced = _reserved(claimbook.claim("u-mig", claimbook.mig(0, "3g.20gb", 4)), "b-2", "b-1")
    for obj in (whole, sliced):
        book.add(obj)
        pods.record(obj)
    answer = stubs.v1.prepare(claimbook.ref(whole), claimbook.ref(sliced))
    assert [answer.claims[uid].error for uid in ("u-whole", "u-mig")] == ["", ""]
    gpus = {gpu.index: gpu.uuid for gpu in plugin.backend.gpus()}
    (instance,) = plugin.backend.status(gpus[0]).mig_instances

    common = {"namespace": claimbook.NAMESPACE, "pool": claimbook.NODE, "share_id": ""}
    expected = [
        {
            **common,
            "UUID": gpus[1],
            "GPU_I_ID": "",
            "GPU_I_PROFILE": "",
            "gpu_uuid": gpus[1],
            "mig_uuid": "",
            "pod": "trainer",
            "claim": "claim-u-whole",
            "claim_uid": "u-whole",
            "device": "gpu-1",
            "type": "gpu",
            "exclusive": "true",
        },
        {
            **common,
            "UUID": gpus[0],
            "GPU_I_ID": str(instance.gpu_instance_id),
            "GPU_I_PROFILE": "3g.20gb",
            "gpu_uuid": gpus[0],
            "mig_uuid": instance.uuid,
            "pod": "b-1,b-2",
            "claim": "claim-u-mig",
            "claim_uid": "u-mig",
            "device": "gpu-0-mig-3g20gb-4",
            "type": "mig",
            "exclusive": "true",
        },
    ]
    assert sorted(_series(registry), key=lambda s: s["claim"]) == sorted(
        expected, key=lambda s: s["claim"]
    )

    stubs.v1.unprepare(claimbook.ref(whole))
    assert [s["claim_uid"] for s in _series(registry)] == ["u-mig"]
    assert pods.pods(claims.ClaimUID("u-whole")) == ()
    assert pods.pods(claims.ClaimUID("u-mig")) == ("b-1", "b-2")


def _device(name: str, share_id: str | None = None, **fields: Any) -> model.PreparedDevice:
    return model.PreparedDevice(
        request_names=("gpu",),
        pool="node",
        device=name,
        share_id=share_id,
        cdi_ids=(),
        gpu_uuid=GPU,
        **fields,
    )


def _claim(uid: str, *devices: model.PreparedDevice) -> model.PreparedClaim:
    return model.PreparedClaim(
        uid=claims.ClaimUID(uid),
        namespace="ns",
        name=f"claim-{uid}",
        state=model.PrepareState.COMPLETED,
        devices=devices,
    )


def _instance(gpu_instance_id: int) -> hardware.MigInstance:
    return hardware.MigInstance(
        parent_uuid=GPU,
        profile_id=9,
        profile_name="3g.20gb",
        placement=hardware.Placement(start=4, size=4),
        uuid=MIG,
        gpu_instance_id=gpu_instance_id,
        compute_instance_id=0,
    )


def _collect(
    prepared: list[model.PreparedClaim], mig_instances: devicemetrics.MigInstances
) -> prometheus_client.CollectorRegistry:
    registry = prometheus_client.CollectorRegistry()
    registry.register(
        devicemetrics.DeviceInfoCollector(
            lambda: prepared, pods=reservations.Reservations(), mig_instances=mig_instances
        )
    )
    return registry


def _no_migs(gpu: str) -> Iterable[hardware.MigInstance]:
    raise AssertionError(f"the backend was asked about {gpu} with no MIG device prepared")


@pytest.mark.parametrize(
    ("device", "kind", "exclusive"),
    [
        (_device("gpu-0"), "gpu", "true"),
        (_device("gpu-0", admin_access=True), "gpu", "false"),
        (_device("gpu-0-shared", share_id="s-1"), "shared", "false"),
        (_device("gpu-0-share-1"), "shared", "false"),
    ],
    ids=["whole-gpu", "admin-access", "share", "compat-share"],
)
def test_only_a_device_one_claim_holds_alone_is_exclusive(
    device: model.PreparedDevice, kind: str, exclusive: str
) -> None:
    (series,) = _series(_collect([_claim("u1", device)], _no_migs))
    assert (series["type"], series["exclusive"], series["UUID"]) == (kind, exclusive, GPU)
    assert series["share_id"] == (device.share_id or "")
    assert series["pod"] == ""  # the claim was never read


def test_a_static_mig_device_gets_its_instance_from_the_backend_once() -> None:
    asked: list[str] = []

    def mig_instances(gpu: str) -> Iterable[hardware.MigInstance]:
        asked.append(gpu)
        return [_instance(gpu_instance_id=5)]

    registry = _collect([_claim("u1", _device("gpu-0-mig-3g20gb-4", mig_uuid=MIG))], mig_instances)
    for _ in range(3):
        (series,) = _series(registry)
        assert (series["GPU_I_ID"], series["GPU_I_PROFILE"], series["mig_uuid"]) == (
            "5",
            "3g.20gb",
            MIG,
        )
    assert asked == [GPU]


def test_a_backend_that_cannot_tell_leaves_the_recorded_instance_id_and_is_asked_again() -> None:
    asked: list[str] = []

    def mig_instances(gpu: str) -> Iterable[hardware.MigInstance]:
        asked.append(gpu)
        raise backend_errors.BackendUnavailableError("NVML is gone")

    dynamic = _device("gpu-0-mig-3g20gb-4", mig_uuid=MIG, mig_gpu_instance_id=2)
    registry = _collect([_claim("u1", dynamic)], mig_instances)
    with capture_logs() as logs:
        for _ in range(2):
            (series,) = _series(registry)
            assert (series["GPU_I_ID"], series["GPU_I_PROFILE"]) == ("2", "")
    assert [entry["event"] for entry in logs] == ["metrics.mig_unknown"]
    assert asked == [GPU, GPU]


def test_pods_come_from_the_pods_a_claim_is_reserved_for() -> None:
    pods = reservations.Reservations()
    obj = {
        "metadata": {"uid": "u1"},
        "status": {
            "reservedFor": [
                {"resource": "pods", "name": "b", "uid": "1"},
                {"resource": "pods", "name": "a", "uid": "2"},
                {"apiGroup": "batch", "resource": "jobs", "name": "job", "uid": "3"},
            ]
        },
    }
    pods.record(obj)
    assert pods.pods(claims.ClaimUID("u1")) == ("a", "b")
    pods.record({"metadata": {"uid": "u1"}, "status": {}})
    assert pods.pods(claims.ClaimUID("u1")) == ()
    pods.record({"metadata": {}})  # no UID: nothing to file it under
    pods.retain([])
    assert pods.pods(claims.ClaimUID("u1")) == ()
