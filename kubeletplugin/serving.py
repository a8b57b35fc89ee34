"""The plugin's gRPC servers and their unix sockets, per the kubelet's plugin-watcher rules.

The DRA server (DRA v1 + v1beta1 + health) listens on ``<plugin dir>/dra-<pod uid>.sock``; the
registration server on ``<registry dir>/<driver>-<pod uid>-reg.sock``. Per-pod names let an old and
a new plugin pod serve side by side during a rolling update. Start order: DRA server first, then
registration (the kubelet dials the DRA socket as soon as it sees the registration socket). Stop
order: registration first. A stale socket of ours is removed before listening; only our own
sockets are removed at stop. A path longer than a unix socket allows (108 bytes) falls back to a
hashed name, as the Go helper library does.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import pathlib
import socket
from collections.abc import Callable
from concurrent import futures

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

log = structlog.get_logger(__name__)

UNIX_PATH_MAX = 108
LIVENESS = ""
"""grpc.health.v1 service name of liveness: SERVING while the servers run."""
READINESS = "readiness"
"""grpc.health.v1 service name of readiness: SERVING once the kubelet accepted our registration
and the node's driver is usable (`set_ready` takes each condition by name)."""


def _short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:16]


def _first_fitting(directory: pathlib.Path, names: list[str]) -> pathlib.Path:
    for name in names:
        path = directory / name
        if len(os.fsencode(path)) < UNIX_PATH_MAX:
            return path
    raise ValueError(f"{directory} is too long for a unix socket path ({UNIX_PATH_MAX} bytes)")


def dra_socket(plugin_dir: pathlib.Path, *, driver: str, pod_uid: str) -> pathlib.Path:
    if not pod_uid:
        return _first_fitting(plugin_dir, ["dra.sock"])
    return _first_fitting(
        plugin_dir, [f"dra-{pod_uid}.sock", f"dra-{_short_hash(driver, pod_uid)}.sock"]
    )


def others_serving(plugin_dir: pathlib.Path, *, own: pathlib.Path) -> bool:
    """Whether another plugin instance serves the node now: a DRA socket in `plugin_dir` other
    than `own` accepts a connection (a rolling update's other pod, of whatever release; a socket
    left by a dead one refuses). Nothing is sent: the connection is closed at once."""
    try:
        names = os.listdir(plugin_dir)
    except FileNotFoundError:
        return False
    for name in names:
        path = plugin_dir / name
        if not (name.startswith("dra") and name.endswith(".sock")) or path == own:
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(os.fsdecode(path))
            except OSError:  # refused (nobody listens), gone, or not a socket
                continue
            return True
    return False


def registration_socket(registry_dir: pathlib.Path, *, driver: str, pod_uid: str) -> pathlib.Path:
    if not pod_uid:
        return _first_fitting(registry_dir, [f"{driver}-reg.sock"])
    return _first_fitting(
        registry_dir,
        [
            f"{driver}-{pod_uid}-reg.sock",
            f"{driver}-{_short_hash(pod_uid)}-reg.sock",
            f"dra-{_short_hash(driver, pod_uid)}-reg.sock",
        ],
    )


@dataclasses.dataclass
class Servers:
    dra_socket: pathlib.Path
    registration_socket: pathlib.Path
    add_dra_services: Callable[[grpc.Server], None]
    add_registration: Callable[[grpc.Server], None]
    health_port: int | None = None
    """TCP port of the ``grpc.health.v1`` liveness service (None: not served)."""
    health_address: str = "127.0.0.1"
    workers: int = 8
    _servers: list[grpc.Server] = dataclasses.field(default_factory=list)
    _health: health.HealthServicer | None = None
    _conditions: dict[str, bool] = dataclasses.field(default_factory=dict)

    def start(self) -> None:
        """Start every server, or none: a failure stops what was started and re-raises."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.dra_socket.parent.mkdir(parents=True, exist_ok=True)
        self.registration_socket.parent.mkdir(parents=True, exist_ok=True)
        self._serve_unix(self.dra_socket, self.add_dra_services)
        self._serve_unix(self.registration_socket, self.add_registration)
        if self.health_port is not None:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            self._health = health.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
            server.add_insecure_port(f"{self.health_address}:{self.health_port}")
            server.start()
            self._servers.append(server)
            self._health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
            self._health.set(READINESS, health_pb2.HealthCheckResponse.NOT_SERVING)
        log.info(
            "plugin.serving",
            dra_socket=str(self.dra_socket),
            registration_socket=str(self.registration_socket),
        )

    def set_ready(self, ready: bool, *, condition: str = "registered") -> None:
        """Readiness is SERVING while every condition reported so far holds: the kubelet's
        verdict on our registration (``registered``), the driver root (``driver``)."""
        self._conditions[condition] = ready
        if self._health is not None:
            status = health_pb2.HealthCheckResponse
            serving = self._conditions.get("registered", False) and all(self._conditions.values())
            self._health.set(READINESS, status.SERVING if serving else status.NOT_SERVING)

    def stop(self, grace: float = 5.0) -> None:
        """Registration first (the kubelet stops using us), then the DRA server."""
        for server in reversed(self._servers):
            server.stop(grace).wait()
        self._servers.clear()
        for path in (self.registration_socket, self.dra_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        log.info("plugin.serving_stopped")

    def _serve_unix(self, path: pathlib.Path, add: Callable[[grpc.Server], None]) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket of a previous run of this very pod
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers))
        add(server)
        try:
            server.add_insecure_port(f"unix:{path}")
        except RuntimeError as exc:  # grpc raises on a failed bind
            raise OSError(f"cannot listen on {path}: {exc}") from exc
        server.start()
        self._servers.append(server)
