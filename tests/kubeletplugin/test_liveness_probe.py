"""The probes' endpoint: ``grpc.health.v1`` on a TCP port (127.0.0.1, a free port).

Covers: liveness (service ``""``) answers SERVING as long as the plugin serves, whatever the
kubelet says of our registration; readiness (service ``readiness``) is NOT_SERVING until the
kubelet accepts the registration, SERVING after, NOT_SERVING again after a rejection; the port is
closed once the plugin stops.
"""

from __future__ import annotations

import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2

from kubeletplugin import serving
from kubeletplugin.protos.pluginregistration import api_pb2 as registration_pb
from tests.kubeletplugin import claimbook, pluginserver

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check(port: int, service: str = serving.LIVENESS) -> int:
    """What a probe (``grpc_health_probe -addr=127.0.0.1:<port> -service=<service>``) gets."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        answer: health_pb2.HealthCheckResponse = call(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return answer.status


def test_liveness_holds_and_readiness_follows_the_registration(
    layout: pluginserver.Layout, book: claimbook.ClaimBook
) -> None:
    port = free_port()
    with (
        pluginserver.PluginServer(layout, book=book, health_port=port) as plugin,
        pluginserver.Stubs.of(plugin) as stubs,
    ):
        assert check(port) == SERVING
        assert check(port, serving.READINESS) == NOT_SERVING
        for registered, ready in [(True, SERVING), (False, NOT_SERVING), (True, SERVING)]:
            stubs.registration.NotifyRegistrationStatus(
                registration_pb.RegistrationStatus(
                    plugin_registered=registered, error="" if registered else "no version"
                ),
                timeout=1,
            )
            assert check(port, serving.READINESS) == ready
            assert check(port) == SERVING
    with pytest.raises(grpc.RpcError) as raised:
        check(port)
    assert pluginserver.status_of(raised.value)[0] is grpc.StatusCode.UNAVAILABLE
