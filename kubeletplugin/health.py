"""Device health for the kubelet (KEP-4680): ``NodeWatchResources`` in v1 and v1alpha1.

The kubelet keeps one stream open per plugin; every message lists every device of the node with
its health, and a new message goes out whenever something changes. `Board` holds the current
view; the GPU backend's health events (and the set of published devices) update it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
import types
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from kubeletplugin.protos.dra_health.v1 import api_pb2 as v1
from kubeletplugin.protos.dra_health.v1 import api_pb2_grpc as v1_grpc
from kubeletplugin.protos.dra_health.v1alpha1 import api_pb2 as v1alpha1
from kubeletplugin.protos.dra_health.v1alpha1 import api_pb2_grpc as v1alpha1_grpc

MAX_MESSAGE = 1024


@dataclasses.dataclass(frozen=True)
class DeviceHealth:
    pool: str
    device: str
    healthy: bool = True
    message: str = ""
    updated: int = dataclasses.field(default_factory=lambda: int(time.time()))


def _state(device: DeviceHealth) -> tuple[bool, str]:
    return device.healthy, device.message


class Board:
    """The current health of every device, and a way to wait for the next change."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._devices: dict[tuple[str, str], DeviceHealth] = {}
        self._version = 0
        self._closed = False

    def set_devices(self, devices: Iterable[DeviceHealth]) -> None:
        """Replace the device list; watchers hear of it only if a device or its health changed."""
        with self._changed:
            new = {(d.pool, d.device): d for d in devices}
            if {k: _state(d) for k, d in new.items()} == {
                k: _state(d) for k, d in self._devices.items()
            }:
                return
            self._devices = new
            self._version += 1
            self._changed.notify_all()

    def update(self, health: DeviceHealth) -> None:
        with self._changed:
            self._devices[(health.pool, health.device)] = health
            self._version += 1
            self._changed.notify_all()

    def devices(self) -> list[DeviceHealth]:
        """The current list, sorted by pool and device."""
        with self._changed:
            return sorted(self._devices.values(), key=lambda d: (d.pool, d.device))

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def watch(
        self, *, alive: Any = lambda: True, poll: float = 1.0
    ) -> Iterator[list[DeviceHealth]]:
        """The full list now and after every change, until closed or `alive()` is False."""
        seen = -1
        while True:
            with self._changed:
                self._changed.wait_for(functools.partial(self._moved_past, seen), poll)
                if self._closed:
                    return
                if self._version == seen:
                    if not alive():
                        return
                    continue
                seen = self._version
                snapshot = self.devices()
            yield snapshot

    def _moved_past(self, version: int) -> bool:
        return self._closed or self._version != version


class HealthService:
    def __init__(self, board: Board, messages: types.ModuleType) -> None:
        self._board = board
        self._pb = messages

    def NodeWatchResources(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        for devices in self._board.watch(alive=context.is_active):
            yield self._pb.NodeWatchResourcesResponse(
                devices=[
                    self._pb.DeviceHealth(
                        device=self._pb.DeviceIdentifier(pool_name=d.pool, device_name=d.device),
                        health=self._pb.HEALTHY if d.healthy else self._pb.UNHEALTHY,
                        last_updated_time=d.updated,
                        message=d.message[:MAX_MESSAGE],
                    )
                    for d in devices
                ]
            )


def register(server: grpc.Server, board: Board) -> None:
    v1_grpc.add_DRAResourceHealthServicer_to_server(HealthService(board, v1), server)
    v1alpha1_grpc.add_DRAResourceHealthServicer_to_server(HealthService(board, v1alpha1), server)
