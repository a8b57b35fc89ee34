"""NodePrepareResources over gRPC, in DRA v1 and v1beta1, for each kind of device.

Covers, in both versions: a full GPU, a dynamic MIG device (the instance appears on the fake GPU
at the allocated placement, its UUID in the CDI spec's env), a share of a shared device (the
quota config is written; ``share_id`` is answered in v1 and absent on the wire in v1beta1), all of
them in one claim, in the claim's order; only our driver's results are answered; the CDI spec
holds every returned ID by the time the answer arrives; request names are base names
(``gpu/mig-1g`` → ``gpu``); prepare is idempotent (same answer twice, across versions too, and
one MIG instance); an empty request gets an empty answer.
"""

from __future__ import annotations

import json

import grpc
import pytest

from dra_driver import hardware
from kubeletplugin.protos.dra.v1 import api_pb2 as v1
from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import NODE

SHARE_ID = "5ca1ab1e-0000-4000-8000-000000000001"


def prepared(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, obj: claimbook.Json
) -> list[v1.Device]:
    """Add the claim to the cluster, prepare it, and the devices of a successful answer."""
    book.add(obj)
    uid = obj["metadata"]["uid"]
    answer = dra.prepare(claimbook.ref(obj))
    assert list(answer.claims) == [uid]
    assert answer.claims[uid].error == ""
    return list(answer.claims[uid].devices)


def cdi_id(claim_uid: str, name: str) -> str:
    return f"k8s.gpu.dra.dev/claim={claim_uid}-{name}"


def test_a_full_gpu(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    (device,) = prepared(dra, book, claimbook.claim("u-gpu", claimbook.gpu(1)))
    assert list(device.request_names) == ["gpu"]
    assert (device.pool_name, device.device_name) == (NODE, "gpu-1")
    assert list(device.cdi_device_ids) == [cdi_id("u-gpu", "gpu-1")]
    if dra.version == "v1":
        assert not device.HasField("share_id")
    env = plugin.layout.cdi_env("u-gpu")
    assert env["GPU_DRA_GPU_1_UUID"] == plugin.backend.gpus()[1].uuid
    assert env["GPU_DRA_GPU_1_TYPE"] == "gpu"


def test_a_mig_device_is_created_at_the_allocated_placement(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    (device,) = prepared(dra, book, claimbook.claim("u-mig", claimbook.mig(0, "3g.20gb", 4)))
    assert device.device_name == "gpu-0-mig-3g20gb-4"
    assert list(device.cdi_device_ids) == [cdi_id("u-mig", "gpu-0-mig-3g20gb-4")]
    a100 = plugin.backend.gpus()[0].uuid
    (instance,) = plugin.backend.status(a100).mig_instances
    assert (instance.profile_name, instance.placement) == ("3g.20gb", hardware.Placement(4, 4))
    env = plugin.layout.cdi_env("u-mig")
    assert env["GPU_DRA_GPU_0_MIG_3G20GB_4_UUID"] == instance.uuid
    assert env["GPU_DRA_GPU_0_MIG_3G20GB_4_PARENT_UUID"] == a100


def test_a_share_of_a_shared_device(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    share = claimbook.shared(1, share_id=SHARE_ID, memory="4Gi", cores="30")
    (device,) = prepared(dra, book, claimbook.claim("u-share", share))
    assert device.device_name == "gpu-1-shared"
    assert list(device.cdi_device_ids) == [cdi_id("u-share", "gpu-1-shared-5ca1ab1e")]
    if dra.version == "v1":
        assert device.share_id == SHARE_ID
    else:
        assert "share_id" not in type(device).DESCRIPTOR.fields_by_name
    conf = (plugin.layout.quota_dir("u-share") / "quota.conf").read_text()
    assert f"device.{plugin.backend.gpus()[1].uuid}.memory_bytes={4 * 1024**3}" in conf
    env = plugin.layout.cdi_env("u-share")
    assert env["GPU_DRA_GPU_1_SHARED_MEMORY_LIMIT"] == str(4 * 1024**3)
    assert env["GPU_DRA_GPU_1_SHARED_CORES"] == "30"
    assert "GPUQ_CONFIG" not in env


def test_v1beta1_sends_no_share_id_on_the_wire(
    book: claimbook.ClaimBook, stubs: pluginserver.Stubs
) -> None:
    # Read the v1beta1 answer with v1 messages: a share_id sent would show up as field 5.
    obj = claimbook.claim("u-share", claimbook.shared(1, share_id=SHARE_ID))
    book.add(obj)
    call = stubs.dra_channel.unary_unary(
        "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources",
        request_serializer=v1.NodePrepareResourcesRequest.SerializeToString,
        response_deserializer=v1.NodePrepareResourcesResponse.FromString,
    )
    ref = claimbook.ref(obj)
    request = v1.NodePrepareResourcesRequest(
        claims=[v1.Claim(namespace=ref.namespace, name=ref.name, uid=ref.uid)]
    )
    answer = call(request, timeout=10)
    (device,) = answer.claims["u-share"].devices
    assert device.device_name == "gpu-1-shared"
    assert not device.HasField("share_id")


def test_one_claim_with_every_kind_keeps_the_claims_order_and_skips_other_drivers(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    obj = claimbook.claim(
        "u-all",
        claimbook.mig(0, "1g.5gb", 6, request="small"),
        claimbook.foreign("nvidia0"),
        claimbook.shared(1, share_id=SHARE_ID, request="share"),
        claimbook.mig(0, "2g.10gb", 0, request="medium"),
    )
    devices = prepared(dra, book, obj)
    assert [(list(d.request_names), d.device_name) for d in devices] == [
        (["small"], "gpu-0-mig-1g5gb-6"),
        (["share"], "gpu-1-shared"),
        (["medium"], "gpu-0-mig-2g10gb-0"),
    ]
    assert len(plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances) == 2


def test_the_cdi_spec_holds_every_returned_id_when_the_answer_arrives(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    obj = claimbook.claim("u-spec", claimbook.gpu(1), claimbook.mig(0, "1g.5gb", 0, request="mig"))
    devices = prepared(dra, book, obj)
    spec = json.loads(plugin.layout.cdi_spec("u-spec").read_text())
    names = {device["name"] for device in spec["devices"]}
    returned = [cdi_id for device in devices for cdi_id in device.cdi_device_ids]
    assert len(returned) == 2
    for qualified in returned:
        kind, _, name = qualified.partition("=")
        assert kind == spec["kind"] == "k8s.gpu.dra.dev/claim"
        assert name in names


def test_request_names_are_base_names(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook
) -> None:
    obj = claimbook.claim("u-sub", claimbook.mig(0, "1g.5gb", 6, request="gpu/mig-1g"))
    (device,) = prepared(dra, book, obj)
    assert list(device.request_names) == ["gpu"]


def test_prepare_is_idempotent(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    obj = claimbook.claim(
        "u-again", claimbook.mig(0, "3g.20gb", 0), claimbook.shared(1, share_id=SHARE_ID)
    )
    book.add(obj)
    first = dra.prepare(claimbook.ref(obj))
    again = dra.prepare(claimbook.ref(obj))
    assert first.claims["u-again"].error == ""
    assert again == first
    assert len(plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances) == 1


def test_prepare_in_one_version_then_the_other_gives_the_same_devices(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    obj = claimbook.claim("u-both", claimbook.mig(0, "1g.10gb", 2))
    book.add(obj)
    first = stubs.v1.prepare(claimbook.ref(obj)).claims["u-both"]
    second = stubs.v1beta1.prepare(claimbook.ref(obj)).claims["u-both"]
    assert first.error == second.error == ""
    assert first.SerializeToString() == second.SerializeToString()  # same fields, same numbers
    assert len(plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances) == 1


def test_an_empty_request_gets_an_empty_answer(dra: pluginserver.DraClient) -> None:
    assert dra.prepare() == dra.pb.NodePrepareResourcesResponse()
    assert dra.unprepare() == dra.pb.NodeUnprepareResourcesResponse()


@pytest.mark.parametrize("operation", ["prepare", "unprepare"])
def test_a_claim_without_uid_fails_the_whole_call_before_any_work(
    dra: pluginserver.DraClient,
    book: claimbook.ClaimBook,
    plugin: pluginserver.PluginServer,
    operation: str,
) -> None:
    good = claimbook.claim("u-ok", claimbook.gpu(1))
    book.add(good)
    call = dra.prepare if operation == "prepare" else dra.unprepare
    with pytest.raises(grpc.RpcError) as raised:
        call(claimbook.ref(good), {"namespace": "ns", "name": "claim-x", "uid": ""})
    code, details = pluginserver.status_of(raised.value)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("claim without uid/namespace/name")
    assert not plugin.layout.cdi_spec("u-ok").exists()
