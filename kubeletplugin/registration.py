"""The registration service the kubelet's plugin watcher calls on our registration socket.

GetInfo tells the kubelet who we are (a ``DRAPlugin`` named after the driver), where the DRA service
listens and which services we serve, in order of preference; NotifyRegistrationStatus tells us
whether the kubelet accepted us. A rejection makes the plugin useless, so it is logged as an error
and kept for the health check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from kubeletplugin.protos.pluginregistration import api_pb2 as pb
from kubeletplugin.protos.pluginregistration import api_pb2_grpc as pb_grpc

log = structlog.get_logger(__name__)

SERVICES = (
    "v1.DRAPlugin",
    "v1beta1.DRAPlugin",
    "v1.DRAResourceHealth",
    "v1alpha1.DRAResourceHealth",
)


class Registration:
    def __init__(
        self,
        *,
        driver: str,
        endpoint: str,
        on_status: Callable[[bool], None] = lambda registered: None,
    ) -> None:
        self.driver = driver
        self.endpoint = endpoint
        self.registered = threading.Event()
        self.error = ""
        self.on_status = on_status

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.PluginInfo(
            type="DRAPlugin",
            name=self.driver,
            endpoint=self.endpoint,
            supported_versions=list(SERVICES),
        )

    def NotifyRegistrationStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if request.plugin_registered:
            self.error = ""
            self.registered.set()
            log.info("registration.accepted", driver=self.driver)
            self.on_status(True)
        else:
            self.error = request.error or "rejected without a reason"
            self.registered.clear()
            log.error("registration.rejected", driver=self.driver, error=self.error)
            self.on_status(False)
        return pb.RegistrationStatusResponse()


def register(server: grpc.Server, registration: Registration) -> None:
    pb_grpc.add_RegistrationServicer_to_server(registration, server)
