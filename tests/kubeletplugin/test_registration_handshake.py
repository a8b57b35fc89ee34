"""The registration handshake, called the way the kubelet's plugin watcher calls it.

Covers: GetInfo on the registration socket names a ``DRAPlugin`` after the driver, points the
kubelet at the DRA socket, and lists the served services in the documented order (DRA v1 first,
so 1.34+ kubelets pick it, then v1beta1 for 1.32/1.33, then health v1 and v1alpha1); the DRA
socket it names really serves the DRA service; NotifyRegistrationStatus accepted and rejected (a
rejection keeps the kubelet's reason, or says there was none), and accepted again after a
rejection.
"""

from __future__ import annotations

import grpc
import pytest

from kubeletplugin.protos.dra.v1 import api_pb2_grpc as dra_v1_grpc
from kubeletplugin.protos.pluginregistration import api_pb2 as pb
from tests.kubeletplugin import claimbook, pluginserver

GET_INFO_TIMEOUT = 1.0  # what the kubelet allows


def test_get_info_tells_the_kubelet_who_we_are_and_where_to_call(
    plugin: pluginserver.PluginServer, stubs: pluginserver.Stubs
) -> None:
    info = stubs.registration.GetInfo(pb.InfoRequest(), timeout=GET_INFO_TIMEOUT)
    assert info.type == "DRAPlugin"
    assert info.name == claimbook.DRIVER
    assert info.endpoint == str(plugin.dra_socket)
    assert info.endpoint.startswith("/")
    assert list(info.supported_versions) == [
        "v1.DRAPlugin",
        "v1beta1.DRAPlugin",
        "v1.DRAResourceHealth",
        "v1alpha1.DRAResourceHealth",
    ]


def test_the_endpoint_of_get_info_serves_the_dra_service(stubs: pluginserver.Stubs) -> None:
    info = stubs.registration.GetInfo(pb.InfoRequest(), timeout=GET_INFO_TIMEOUT)
    with grpc.insecure_channel(f"unix:{info.endpoint}") as channel:  # as the kubelet dials it
        stub = dra_v1_grpc.DRAPluginStub(channel)
        answer = stub.NodePrepareResources(
            stubs.v1.pb.NodePrepareResourcesRequest(), timeout=GET_INFO_TIMEOUT
        )
    assert dict(answer.claims) == {}


@pytest.mark.parametrize(
    ("registered", "error", "kept"),
    [
        pytest.param(True, "", "", id="accepted"),
        pytest.param(False, "no supported version", "no supported version", id="rejected"),
        pytest.param(False, "", "rejected without a reason", id="rejected-silently"),
    ],
)
def test_notify_registration_status(
    plugin: pluginserver.PluginServer,
    stubs: pluginserver.Stubs,
    registered: bool,
    error: str,
    kept: str,
) -> None:
    status = pb.RegistrationStatus(plugin_registered=registered, error=error)
    answer = stubs.registration.NotifyRegistrationStatus(status, timeout=GET_INFO_TIMEOUT)
    assert answer == pb.RegistrationStatusResponse()
    assert plugin.registration.registered.is_set() is registered
    assert plugin.registration.error == kept


def test_an_acceptance_after_a_rejection_clears_the_error(
    plugin: pluginserver.PluginServer, stubs: pluginserver.Stubs
) -> None:
    notify = stubs.registration.NotifyRegistrationStatus
    notify(pb.RegistrationStatus(plugin_registered=False, error="boom"), timeout=1)
    notify(pb.RegistrationStatus(plugin_registered=True), timeout=1)
    assert plugin.registration.registered.is_set()
    assert plugin.registration.error == ""
