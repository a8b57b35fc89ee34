"""The kubelet plugin process: ``python -m kubeletplugin`` (console script ``gpu-dra-kubeletplugin``).

Wiring only: settings from flags (and the ``NODE_NAME``/``POD_UID`` environment a DaemonSet sets),
the GPU backend, start-up reconciliation, the gRPC servers, metrics, the periodic duties (the
sweep, the driver check: `controller.looping.Loop` threads that log, back off and retry whatever
they run into), and a clean stop on SIGTERM/SIGINT (sockets removed, ResourceSlices left in place).
"""

from __future__ import annotations

import argparse
import functools
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

from controller import looping, rest
from dra_driver import backends, logs, preparing
from dra_driver.backends import errors as backend_errors
from dra_driver.checkpoint import store
from dra_driver.driverroot import caching, discovery, hooks, roots
from dra_driver.driverroot import errors as driverroot_errors
from dra_driver.slices import settings
from kubeletplugin import (
    claimfetching,
    draservice,
    health,
    metrics,
    mpsdeployments,
    podclaims,
    publishing,
    registration,
    serving,
    sharemetrics,
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
    add(
        "--driver-root",
        help="host path of the NVIDIA driver installation: / on most nodes, /run/nvidia/driver "
        "under the GPU operator (default: / with --gpus nvml; none with fake GPUs: their specs "
        "then get no driver files)",
    )
    add("--driver-root-ctr-path", help="where this process sees --driver-root (default: the same)")
    add(
        "--dev-root",
        help="host path under which dev/nvidia* lie (default: the driver root if it has "
        "dev/nvidiactl, else /)",
    )
    add("--dev-root-ctr-path", help="where this process sees --dev-root (default: the same)")
    add("--proc-root", type=pathlib.Path, default=pathlib.Path("/proc"), help="the driver's proc")
    add(
        "--driver-capabilities",
        default=",".join(discovery.DEFAULT_CAPABILITIES),
        help=f"driver files containers get: some of {','.join(discovery.CAPABILITIES)}, or all",
    )
    add(
        "--nvidia-cdi-hook",
        type=pathlib.Path,
        help="host path of nvidia-cdi-hook, run by the container runtime "
        "(default: <plugin dir>/bin/nvidia-cdi-hook)",
    )
    add(
        "--nvidia-cdi-hook-source",
        type=pathlib.Path,
        help="install nvidia-cdi-hook from this file (the image's) to --nvidia-cdi-hook at start",
    )
    add("--driver-check-interval", type=float, default=30.0, help="seconds between driver checks")
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
    if args.driver_root is None and args.gpus == "nvml":
        args.driver_root = "/"
    if args.nvidia_cdi_hook is None:
        args.nvidia_cdi_hook = args.plugin_dir / "bin" / hooks.NAME
    return args


def open_driver(args: argparse.Namespace) -> caching.Driver | None:
    """The node's driver for CDI specs, with the hook installed where the runtime runs it."""
    where = driver_settings(args)
    if where is None:
        return None
    if args.nvidia_cdi_hook_source is not None:
        try:
            hooks.install(args.nvidia_cdi_hook_source, args.nvidia_cdi_hook)
        except driverroot_errors.DriverRootError as exc:  # readiness and prepares say it too
            log.error("driverroot.hook_not_installed", error=str(exc))
    return caching.Driver(where)


def driver_settings(args: argparse.Namespace) -> caching.Settings | None:
    """Where the driver is, from the flags; None when specs get no driver (fake GPUs)."""
    if args.driver_root is None:
        return None
    driver = roots.Root.at(args.driver_root, args.driver_root_ctr_path)
    if args.dev_root is not None:
        dev = roots.Root.at(args.dev_root, args.dev_root_ctr_path)
    elif driver.seen("/dev/nvidiactl").exists():
        dev = driver
    else:
        dev = roots.Root.at("/", args.dev_root_ctr_path)
    return caching.Settings(
        roots=roots.Roots(driver=driver, dev=dev, proc=args.proc_root),
        capabilities=tuple(c for c in args.driver_capabilities.split(",") if c),
        hook=args.nvidia_cdi_hook,
    )


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


def open_preparer(
    args: argparse.Namespace,
    backend: backends.GpuBackend,
    client: rest.Rest,
    publish: settings.PublishSettings,
) -> preparing.Preparer:
    """The prepare flow of this node, reconciled with what a previous run left."""
    node_config = preparing.NodeConfig(
        node_name=args.node_name,
        driver_name=args.driver_name,
        plugin_dir=args.plugin_dir,
        cdi_dir=args.cdi_dir,
        publish=publish,
        real_gpus=args.gpus == "nvml",
        preload_library=args.preload_library,
    )
    driver = open_driver(args)
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
        backend, node_config, boot_id=store.current_boot_id(), mps_runner=runner, driver=driver
    )
    preparer.reconcile()
    return preparer


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
    preparer = open_preparer(args, backend, client, publish)
    driver = preparer.driver
    fetcher = claimfetching.ClaimFetcher(client, api_version=api_version)
    stats = metrics.Metrics()
    stats.registry.register(sharemetrics.ShareCollector(preparer.shared_claims))
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
        on_error=stats.api_errors.labels("publisher").inc,
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
            server,
            preparer=preparer,
            fetch=fetcher.fetch,
            driver=args.driver_name,
            stats=stats,
            get_pod=podclaims.pod_getter(client),
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

    def check_driver() -> None:
        if driver is not None:
            problem = driver.check()
            stats.driver_root_ready.set(0 if problem else 1)
            servers.set_ready(problem is None, condition="driver")

    check_driver()
    sweep = functools.partial(sweeping.pass_, preparer, exists=fetcher.exists)
    duties = [
        looping.Loop("sweep", stats.counting_errors("sweep", sweep), interval=args.sweep_interval)
    ]
    if driver is not None:
        duties.append(
            looping.Loop("driver-check", check_driver, interval=args.driver_check_interval)
        )
    threads = [
        threading.Thread(target=duty.run, name=f"duty-{duty.name}", daemon=True) for duty in duties
    ]
    servers.start()
    publisher.start(stop, resync=args.resync_interval)
    try:
        # Everything loaded so far lives as long as the process: keep the garbage collector from
        # walking it on every full collection (pauses of 10+ ms inside a prepare otherwise).
        gc.freeze()
        if args.metrics_port >= 0:
            stats.serve(args.metrics_port, address=args.bind_address)
        for thread in threads:
            thread.start()
        log.info("plugin.started", node=args.node_name, driver=args.driver_name, gpus=args.gpus)
        stop.wait()
    finally:
        stop.set()
        for duty in duties:
            duty.stop()
        for thread in threads:
            if thread.is_alive():
                thread.join(5.0)  # a sweep asking a hung API server ends within its timeout
        board.close()
        servers.stop()
        publisher.join()


def _in_cluster_client() -> client.ApiClient:
    config.load_incluster_config()
    return client.ApiClient()


if __name__ == "__main__":
    sys.exit(main())
