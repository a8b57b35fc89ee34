"""The kubelet plugin process: ``python -m kubeletplugin`` (console script ``gpu-dra-kubeletplugin``).

Wiring only: settings from flags (and the ``NODE_NAME``/``POD_UID`` environment a DaemonSet sets),
the GPU backend, start-up reconciliation, the gRPC servers, metrics, the periodic sweep, and a
clean stop on SIGTERM/SIGINT (sockets removed, ResourceSlices left in place).
"""

from __future__ import annotations

import argparse
import gc
import os
import pathlib
import signal
import sys
import threading
from types import FrameType

import grpc
import structlog
from kubernetes import client, config

from controller import rest
from dra_driver import backends, logs, preparing
from dra_driver.backends import errors as backend_errors
from dra_driver.checkpoint import store
from dra_driver.slices import settings
from kubeletplugin import (
    claimfetching,
    draservice,
    health,
    metrics,
    mpsdeployments,
    publishing,
    registration,
    serving,
    sweeping,
)

log = structlog.get_logger(__name__)

DEFAULT_DRIVER = "gpu.dra.dev"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-dra-kubeletplugin", description=__doc__)
    add = parser.add_argument
    add("--driver-name", default=DEFAULT_DRIVER)
    add("--node-name", default=os.environ.get("NODE_NAME", ""), help="default: $NODE_NAME")
    add("--pod-uid", default=os.environ.get("POD_UID", ""), help="for per-pod socket names")
    add("--gpus", default="nvml", help="'nvml' or 'fake:<spec>', e.g. fake:8xA100-40GB")
    add("--plugin-dir", type=pathlib.Path, help="default: /var/lib/kubelet/plugins/<driver>")
    add(
        "--registry-dir",
        type=pathlib.Path,
        default=pathlib.Path("/var/lib/kubelet/plugins_registry"),
    )
    add("--cdi-dir", type=pathlib.Path, default=pathlib.Path("/var/run/cdi"))
    add("--kubeconfig", help="default: in-cluster configuration")
    add(
        "--mode",
        choices=["auto", *(m.value for m in settings.Mode)],
        default="auto",
        help="auto: full if the API server has partitionable devices and consumable capacity",
    )
    add("--resync-interval", type=float, default=60.0, help="seconds between slice resyncs")
    add(
        "--mps-runner",
        choices=["local", "kubernetes"],
        default="local",
        help="where MPS daemons run: in the plugin's container, or one pinned Deployment each",
    )
    add("--mps-image", default="", help="image of the MPS daemon pods (--mps-runner kubernetes)")
    add("--namespace", default=os.environ.get("POD_NAMESPACE", "default"), help="of MPS pods")
    add(
        "--preload-library",
        help="host path of libgpuquota.so, injected into containers of claims with shares "
        "(default: none; the quota config is then written but not enforced)",
    )
    add("--no-dynamic-mig", action="store_true")
    add("--sharing-strategy", choices=[s.value for s in settings.SharingStrategy], default="mps")
    add("--compat-shares", type=int, default=0)
    add("--healthcheck-port", type=int, default=-1, help="grpc.health.v1 on TCP; -1: off")
    add("--metrics-port", type=int, default=-1, help="Prometheus metrics; -1: off")
    add("--bind-address", default="127.0.0.1", help="address of the TCP health/metrics ports")
    add("--sweep-interval", type=float, default=600.0, help="seconds between sweeps")
    add("--log-format", choices=["console", "json"], default="console")
    add("--log-level", default="info")
    args = parser.parse_args(argv)
    if not args.node_name:
        parser.error("--node-name (or $NODE_NAME) is required")
    if args.plugin_dir is None:
        args.plugin_dir = pathlib.Path("/var/lib/kubelet/plugins") / args.driver_name
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(fmt=args.log_format, level=args.log_level)
    try:
        backend = backends.open_backend(
            args.gpus, node_name=args.node_name, state_dir=args.plugin_dir
        )
    except backend_errors.BackendUnavailableError as exc:
        log.error("plugin.no_gpus", error=str(exc))
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("plugin.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run(args, backend, stop)
    finally:
        backend.close()
    return 0


def run(args: argparse.Namespace, backend: backends.GpuBackend, stop: threading.Event) -> None:
    api = (
        config.new_client_from_config(args.kubeconfig) if args.kubeconfig else _in_cluster_client()
    )
    client = rest.Rest(api)
    mode, api_version = publishing.decide_mode(
        client, requested=args.mode, driver=args.driver_name, node_name=args.node_name, stop=stop
    )
    publish = settings.PublishSettings(
        mode=mode,
        dynamic_mig=not args.no_dynamic_mig,
        shared=settings.SharedSettings(
            strategy=settings.SharingStrategy(args.sharing_strategy),
            compat_shares=args.compat_shares,
        ),
    )
    node_config = preparing.NodeConfig(
        node_name=args.node_name,
        driver_name=args.driver_name,
        plugin_dir=args.plugin_dir,
        cdi_dir=args.cdi_dir,
        publish=publish,
        real_gpus=args.gpus == "nvml",
        preload_library=args.preload_library,
    )
    runner = None
    if args.mps_runner == "kubernetes":
        runner = mpsdeployments.DeploymentRunner(
            client,
            namespace=args.namespace,
            node_name=args.node_name,
            image=args.mps_image,
            driver=args.driver_name,
        )
    preparer = preparing.Preparer(
        backend, node_config, boot_id=store.current_boot_id(), mps_runner=runner
    )
    preparer.reconcile()
    fetcher = claimfetching.ClaimFetcher(api, api_version=api_version)
    stats = metrics.Metrics()
    board = health.Board()
    publisher = publishing.Publisher(
        client=client,
        backend=backend,
        preparer=preparer,
        publish=publish,
        driver=args.driver_name,
        node_name=args.node_name,
        board=board,
        on_dropped=stats.dropped_fields.set,
        api_version=api_version,
    )
    reg = registration.Registration(
        driver=args.driver_name,
        endpoint=str(
            serving.dra_socket(args.plugin_dir, driver=args.driver_name, pod_uid=args.pod_uid)
        ),
    )

    def add_dra(server: grpc.Server) -> None:
        draservice.register(
            server, preparer=preparer, fetch=fetcher.fetch, driver=args.driver_name, stats=stats
        )
        health.register(server, board)

    servers = serving.Servers(
        dra_socket=pathlib.Path(reg.endpoint),
        registration_socket=serving.registration_socket(
            args.registry_dir, driver=args.driver_name, pod_uid=args.pod_uid
        ),
        add_dra_services=add_dra,
        add_registration=lambda server: registration.register(server, reg),
        health_port=args.healthcheck_port if args.healthcheck_port >= 0 else None,
        health_address=args.bind_address,
    )
    reg.on_status = servers.set_ready
    servers.start()
    publisher.start(stop, resync=args.resync_interval)
    try:
        # Everything loaded so far lives as long as the process: keep the garbage collector from
        # walking it on every full collection (pauses of 10+ ms inside a prepare otherwise).
        gc.freeze()
        if args.metrics_port >= 0:
            stats.serve(args.metrics_port, address=args.bind_address)
        log.info("plugin.started", node=args.node_name, driver=args.driver_name, gpus=args.gpus)
        while not stop.wait(args.sweep_interval):
            sweeping.sweep(preparer, exists=fetcher.exists)
    finally:
        stop.set()
        board.close()
        servers.stop()
        publisher.join()


def _in_cluster_client() -> client.ApiClient:
    config.load_incluster_config()
    return client.ApiClient()


if __name__ == "__main__":
    sys.exit(main())
