"""Test support: the real kubelet-plugin servers on unix sockets in a temporary directory.

`PluginServer` wires what ``kubeletplugin.__main__`` wires (fake GPUs whose state lives in the
plugin dir, a `preparing.Preparer`, the health board, the registration service driving readiness,
`serving.Servers` with the DRA v1/v1beta1 and health services) except the API server: claims come from a
`claimbook.ClaimBook`. `Stubs` are the kubelet's side: gRPC stubs on ``unix://`` channels.

Also runnable as a process, for tests that kill it::

    python -m tests.kubeletplugin.pluginserver --dir <root> --gpus fake:1xA100-40GB,1xL4 \\
        --pod-uid <uid> --claims-dir <dir>

It reconciles, serves, prints ``ready`` on stdout, and stops cleanly on SIGTERM. `PluginProcess`
starts and stops it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import threading
import time
import types
from typing import IO, Any, Self

import grpc

from dra_driver import backends, logs, preparing
from dra_driver.cdi import naming as cdi_naming
from dra_driver.checkpoint import model, store
from dra_driver.isolation import quotas
from dra_driver.slices import settings
from kubeletplugin import draservice, health, metrics, publishing, registration, serving
from kubeletplugin.protos.dra.v1 import api_pb2 as dra_v1
from kubeletplugin.protos.dra.v1 import api_pb2_grpc as dra_v1_grpc
from kubeletplugin.protos.dra.v1beta1 import api_pb2 as dra_v1beta1
from kubeletplugin.protos.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from kubeletplugin.protos.dra_health.v1 import api_pb2_grpc as health_v1_grpc
from kubeletplugin.protos.dra_health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc
from kubeletplugin.protos.pluginregistration import api_pb2_grpc as registration_grpc
from tests.kubeletplugin import claimbook

GPUS = "fake:1xA100-40GB,1xL4"
"""GPU 0 can be split into MIG devices, GPU 1 cannot."""

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Layout:
    """The node's directories under `root`, as the DaemonSet mounts them under /var."""

    root: pathlib.Path

    @property
    def plugin_dir(self) -> pathlib.Path:
        return self.root / "plugins" / claimbook.DRIVER

    @property
    def registry_dir(self) -> pathlib.Path:
        return self.root / "plugins_registry"

    @property
    def cdi_dir(self) -> pathlib.Path:
        return self.root / "cdi"

    def dra_socket(self, pod_uid: str) -> pathlib.Path:
        return serving.dra_socket(self.plugin_dir, driver=claimbook.DRIVER, pod_uid=pod_uid)

    def registration_socket(self, pod_uid: str) -> pathlib.Path:
        return serving.registration_socket(
            self.registry_dir, driver=claimbook.DRIVER, pod_uid=pod_uid
        )

    def cdi_spec(self, claim_uid: str) -> pathlib.Path:
        return self.cdi_dir / cdi_naming.spec_file_name(claim_uid)

    def cdi_env(self, claim_uid: str) -> dict[str, str]:
        """Every environment variable the claim's CDI spec sets (devices' and the claim's)."""
        content = json.loads(self.cdi_spec(claim_uid).read_text())
        edits = [device["containerEdits"] for device in content["devices"]]
        edits.append(content.get("containerEdits", {}))
        pairs = [item.partition("=") for edit in edits for item in edit.get("env", [])]
        return {key: value for key, _, value in pairs}

    def quota_dir(self, claim_uid: str) -> pathlib.Path:
        return quotas.claim_dir(self.node_config().claims_root, claim_uid)

    def checkpointed(self) -> dict[str, model.PrepareState]:
        """The claims in the checkpoint, and how far each got."""
        config = self.node_config()
        loaded = store.read_node(
            config.plugin_dir, lock_path=config.lock_path, boot_id=store.current_boot_id()
        )
        return {uid: claim.state for uid, claim in loaded.claims.items()}

    def node_config(
        self, checkpoint_layout: store.Layout = store.Layout.DIRECTORY
    ) -> preparing.NodeConfig:
        return preparing.NodeConfig(
            node_name=claimbook.NODE,
            driver_name=claimbook.DRIVER,
            plugin_dir=self.plugin_dir,
            cdi_dir=self.cdi_dir,
            publish=settings.PublishSettings(),
            real_gpus=False,
            checkpoint_layout=checkpoint_layout,
        )

    def open_gpus(self, gpus: str = GPUS) -> backends.GpuBackend:
        """The fake GPUs every plugin instance on this layout sees (state in the plugin dir)."""
        return backends.open_backend(gpus, node_name=claimbook.NODE, state_dir=self.plugin_dir)


class PluginServer:
    """One plugin instance (one pod): preparer, health board, registration and servers."""

    def __init__(
        self,
        layout: Layout,
        *,
        book: claimbook.ClaimBook,
        pod_uid: str = "",
        gpus: str = GPUS,
        health_port: int | None = None,
        checkpoint_layout: store.Layout = store.Layout.DIRECTORY,
    ) -> None:
        self.layout = layout
        self.pod_uid = pod_uid
        self.backend = layout.open_gpus(gpus)
        self.preparer = preparing.Preparer(
            self.backend,
            layout.node_config(checkpoint_layout),
            boot_id=store.current_boot_id(),
            others_serving=functools.partial(
                serving.others_serving, layout.plugin_dir, own=layout.dra_socket(pod_uid)
            ),
        )
        self.board = health.Board()
        self.registration = registration.Registration(
            driver=claimbook.DRIVER, endpoint=str(layout.dra_socket(pod_uid))
        )
        self.stats = metrics.Metrics()

        def add_dra(server: grpc.Server) -> None:
            draservice.register(
                server,
                preparer=self.preparer,
                fetch=book.fetch,
                driver=claimbook.DRIVER,
                stats=self.stats,
            )
            health.register(server, self.board)

        self.servers = serving.Servers(
            dra_socket=layout.dra_socket(pod_uid),
            registration_socket=layout.registration_socket(pod_uid),
            add_dra_services=add_dra,
            add_registration=lambda server: registration.register(server, self.registration),
            health_port=health_port,
        )
        self.registration.on_status = self.servers.set_ready

    @property
    def dra_socket(self) -> pathlib.Path:
        return self.servers.dra_socket

    @property
    def registration_socket(self) -> pathlib.Path:
        return self.servers.registration_socket

    def start(self) -> None:
        """Start-up as in ``__main__``: reconcile, publish device health, serve."""
        self.preparer.reconcile()
        self.board.set_devices(published(self.backend))
        try:
            self.servers.start()
        except BaseException:
            self.stop()  # a server that did start must not outlive the test
            raise

    def stop(self, grace: float = 1.0) -> None:
        self.board.close()
        self.servers.stop(grace)
        self.backend.close()
        # gRPC never shuts a server's worker pool down: its threads end when the pool is freed,
        # and the server's state sits in a reference cycle (closures over it). Free it now, not
        # at the next automatic collection, which may come after the leaked-thread check.
        gc.collect()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def published(backend: backends.GpuBackend) -> list[health.DeviceHealth]:
    """Every device the node publishes (the plugin's own computation, `publishing.pool`)."""
    board = health.Board()
    publishing.pool(
        backend,
        node_name=claimbook.NODE,
        publish=settings.PublishSettings(),
        owned_mig_uuids=set(),
        board=board,
    )
    board.close()
    return board.devices()


@dataclasses.dataclass(frozen=True)
class DraClient:
    """One version of the DRA service, with the messages of that version."""

    version: str
    stub: Any
    pb: types.ModuleType

    def prepare(self, *refs: Any, timeout: float = 10.0) -> Any:
        """NodePrepareResources for `refs` (`claims.ClaimRef`s, or protobuf ``Claim`` kwargs)."""
        return self.stub.NodePrepareResources(
            self.pb.NodePrepareResourcesRequest(claims=[self._claim(r) for r in refs]),
            timeout=timeout,
        )

    def unprepare(self, *refs: Any, timeout: float = 10.0) -> Any:
        return self.stub.NodeUnprepareResources(
            self.pb.NodeUnprepareResourcesRequest(claims=[self._claim(r) for r in refs]),
            timeout=timeout,
        )

    def _claim(self, ref: Any) -> Any:
        if isinstance(ref, dict):
            return self.pb.Claim(**ref)
        return self.pb.Claim(namespace=ref.namespace, uid=ref.uid, name=ref.name)


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a failed gRPC call."""
    assert isinstance(error, grpc.Call), f"not a gRPC call error: {error!r}"
    return error.code(), str(error.details())


class Stubs:
    """The kubelet's clients of one plugin instance."""

    def __init__(self, dra_socket: pathlib.Path, registration_socket: pathlib.Path) -> None:
        self.dra_channel = grpc.insecure_channel(f"unix://{dra_socket}")
        self.registration_channel = grpc.insecure_channel(f"unix://{registration_socket}")
        self.v1 = DraClient("v1", dra_v1_grpc.DRAPluginStub(self.dra_channel), dra_v1)
        self.v1beta1 = DraClient(
            "v1beta1", dra_v1beta1_grpc.DRAPluginStub(self.dra_channel), dra_v1beta1
        )
        self.health_v1 = health_v1_grpc.DRAResourceHealthStub(self.dra_channel)
        self.health_v1alpha1 = health_v1alpha1_grpc.DRAResourceHealthStub(self.dra_channel)
        self.registration = registration_grpc.RegistrationStub(self.registration_channel)

    @classmethod
    def of(cls, plugin: PluginServer) -> Stubs:
        return cls(plugin.dra_socket, plugin.registration_socket)

    def close(self) -> None:
        self.dra_channel.close()
        self.registration_channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- as a process --------------------------------------------------------------------------------


class PluginProcess:
    """``python -m tests.kubeletplugin.pluginserver`` on `layout`, started and stopped by a test."""

    def __init__(
        self,
        layout: Layout,
        *,
        claims_dir: pathlib.Path,
        pod_uid: str,
        failpoint: str | None = None,
        gpus: str = GPUS,
    ) -> None:
        self.layout = layout
        self.pod_uid = pod_uid
        env = {key: value for key, value in os.environ.items() if key != "GPU_DRA_FAILPOINT"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        if failpoint is not None:
            env["GPU_DRA_FAILPOINT"] = failpoint
        layout.root.mkdir(parents=True, exist_ok=True)
        self.log_path = layout.root / f"plugin-{time.monotonic_ns()}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.kubeletplugin.pluginserver",
                f"--dir={layout.root}",
                f"--gpus={gpus}",
                f"--pod-uid={pod_uid}",
                f"--claims-dir={claims_dir}",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the process printed ``ready``; fails with its log if it exits or is late."""
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([stdout], [], [], left)
            if not readable:
                break
            line = stdout.readline()
            if line.strip() == b"ready":
                return
            if not line:
                raise AssertionError(f"the plugin exited before it was ready:\n{self.log()}")
        raise AssertionError(f"the plugin was not ready within {timeout} s:\n{self.log()}")

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, and the exit status (the process is killed if it does not stop in time)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the process if it still runs; release its pipe and log file."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stubs(self) -> Stubs:
        return Stubs(
            self.layout.dra_socket(self.pod_uid), self.layout.registration_socket(self.pod_uid)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pluginserver", description=__doc__)
    parser.add_argument("--dir", type=pathlib.Path, required=True, help="root of the node dirs")
    parser.add_argument("--gpus", default=GPUS)
    parser.add_argument("--pod-uid", default="")
    parser.add_argument("--claims-dir", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    logs.configure(fmt="console", level="debug")  # to stderr; stdout carries "ready" only
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    plugin = PluginServer(
        Layout(args.dir),
        book=claimbook.ClaimBook(args.claims_dir),
        pod_uid=args.pod_uid,
        gpus=args.gpus,
    )
    plugin.start()
    try:
        print("ready", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        plugin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
