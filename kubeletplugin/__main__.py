"""The kubelet plugin process: ``python -m kubeletplugin`` (console script ``gpu-dra-kubeletplugin``).

Wiring only: the flags (and the ``NODE_NAME``/``POD_UID``/``POD_NAMESPACE`` environment a
DaemonSet sets) parsed into one `settings.Settings`, the API client made by
`controller.connecting.connect`, the GPU backend; `run` takes all three and wires start-up
reconciliation, the gRPC servers, metrics, the periodic duties (the sweep, the driver check:
`controller.looping.Loop` threads that log, back off and retry whatever they run into) until
``stop`` is set.

Exit codes, the same as the cluster controller's (`dra_driver.processes`):

- 0: a clean stop on SIGTERM or SIGINT (sockets removed, ResourceSlices left in place);
- 2: it could not start: a bad flag (argparse's usage message), no API server configuration or
  credentials, no GPUs (log ``plugin.cannot_start`` with a ``reason``).
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
from collections.abc import Sequence

import grpc
import structlog

from controller import connecting, errors, looping, rest
from dra_driver import backends, logs, preparing, processes
from dra_driver.backends import errors as backend_errors
from dra_driver.checkpoint import store
from dra_driver.driverroot import caching, hooks, roots
from dra_driver.driverroot import errors as driverroot_errors
from dra_driver.slices import settings as slice_settings
from kubeletplugin import (
    claimfetching,
    devicemetrics,
    draservice,
    health,
    healthwatching,
    metrics,
    mpsdeployments,
    podclaims,
    publishing,
    registration,
    reservations,
    serving,
    settings,
    sharemetrics,
    sweeping,
)

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    config = settings.parse(argv)
    logs.configure(fmt=config.logging.format, level=config.logging.level)
    try:
        api = connecting.connect(config.kubeconfig)
    except errors.ConfigurationError as exc:
        log.error("plugin.cannot_start", reason="api_configuration", error=str(exc))
        return processes.CANNOT_START
    with api.api:
        try:
            backend = backends.open_backend(
                config.node.gpus, node_name=config.node.name, state_dir=config.node.plugin_dir
            )
        except backend_errors.BackendUnavailableError as exc:
            log.error("plugin.cannot_start", reason="no_gpus", error=str(exc))
            return processes.CANNOT_START
        stop = threading.Event()
        processes.stop_on_signals(stop, event="plugin.signal")
        try:
            run(config, api=api, backend=backend, stop=stop)
        finally:
            backend.close()
    return processes.STOPPED


def run(
    config: settings.Settings,
    *,
    api: rest.Rest,
    backend: backends.GpuBackend,
    stop: threading.Event,
) -> None:
    """Serve the node until `stop` is set; returns at once if it is set before the API server
    first answers."""
    try:
        mode, api_version = publishing.decide_mode(
            api,
            requested=config.publishing.mode.value if config.publishing.mode else "auto",
            driver=config.driver_name,
            node_name=config.node.name,
            stop=stop,
        )
    except errors.RetryableError:  # raised only once `stop` is set
        log.info("plugin.stopped")
        return
    publish = _publish_settings(config.publishing, mode)
    preparer = open_preparer(config, backend=backend, api=api, publish=publish)
    driver = preparer.driver
    pods = reservations.Reservations()
    fetcher = claimfetching.ClaimFetcher(api, api_version=api_version, on_read=pods.record)
    stats = open_metrics(preparer, backend=backend, pods=pods)
    board = health.Board()
    publisher = publishing.Publisher(
        client=api,
        backend=backend,
        preparer=preparer,
        publish=publish,
        driver=config.driver_name,
        node_name=config.node.name,
        board=board,
        on_dropped=stats.dropped_fields.set,
        on_error=stats.api_errors.labels("publisher").inc,
        api_version=api_version,
        health=healthwatching.Health(
            config.health, backend=backend, plugin_dir=config.node.plugin_dir, stats=stats
        ),
    )
    node = config.node
    reg = registration.Registration(driver=config.driver_name, endpoint=str(config.dra_socket))

    def add_dra(server: grpc.Server) -> None:
        draservice.register(
            server,
            preparer=preparer,
            fetch=fetcher.fetch,
            driver=config.driver_name,
            stats=stats,
            get_pod=podclaims.pod_getter(api),
            on_unprepared=pods.forget,
        )
        health.register(server, board)

    servers = serving.Servers(
        dra_socket=config.dra_socket,
        registration_socket=serving.registration_socket(
            node.registry_dir, driver=config.driver_name, pod_uid=node.pod_uid
        ),
        add_dra_services=add_dra,
        add_registration=lambda server: registration.register(server, reg),
        health_port=config.endpoints.health_port,
        health_address=config.endpoints.bind_address,
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
        looping.Loop("sweep", stats.counting_errors("sweep", sweep), interval=config.sweep_interval)
    ]
    if driver is not None:
        duties.append(
            looping.Loop("driver-check", check_driver, interval=config.driver_check_interval)
        )
    threads = [
        threading.Thread(target=duty.run, name=f"duty-{duty.name}", daemon=True) for duty in duties
    ]
    servers.start()
    publisher.start(stop, resync=config.publishing.resync_interval)
    try:
        # Everything loaded so far lives as long as the process: keep the garbage collector from
        # walking it on every full collection (pauses of 10+ ms inside a prepare otherwise).
        gc.freeze()
        if config.endpoints.metrics_port is not None:
            stats.serve(config.endpoints.metrics_port, address=config.endpoints.bind_address)
        for thread in threads:
            thread.start()
        log.info("plugin.started", node=node.name, driver=config.driver_name, gpus=node.gpus)
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
        log.info("plugin.stopped")


def open_metrics(
    preparer: preparing.Preparer,
    *,
    backend: backends.GpuBackend,
    pods: reservations.Reservations,
) -> metrics.Metrics:
    """The plugin's metrics, with the collectors that read the node's state at scrape time: the
    shares' accounting, and each prepared device with its pods (`pods`, fed by the claim reads)."""
    stats = metrics.Metrics()
    stats.registry.register(sharemetrics.ShareCollector(preparer.shared_claims))
    stats.registry.register(
        devicemetrics.DeviceInfoCollector(
            preparer.completed_claims,
            pods=pods,
            mig_instances=lambda gpu: backend.status(gpu).mig_instances,
        )
    )
    return stats


def open_preparer(
    config: settings.Settings,
    *,
    backend: backends.GpuBackend,
    api: rest.Rest,
    publish: slice_settings.PublishSettings,
) -> preparing.Preparer:
    """The prepare flow of this node, reconciled with what a previous run left."""
    node_config = preparing.NodeConfig(
        node_name=config.node.name,
        driver_name=config.driver_name,
        plugin_dir=config.node.plugin_dir,
        cdi_dir=config.node.cdi_dir,
        publish=publish,
        real_gpus=config.node.real_gpus,
        preload_library=config.driver_files.preload_library,
        checkpoint_layout=config.node.checkpoint_layout,
        mps_ready_timeout=config.mps.ready_timeout,
    )
    runner = None
    if config.mps.runner is settings.MpsRunner.KUBERNETES:
        runner = mpsdeployments.DeploymentRunner(
            api,
            namespace=config.mps.namespace,
            node_name=config.node.name,
            image=config.mps.image,
            driver=config.driver_name,
            driver_root=config.driver_files.root if config.node.real_gpus else None,
            pull_policy=config.mps.pull_policy,
            pull_secrets=config.mps.pull_secrets,
        )
    preparer = preparing.Preparer(
        backend,
        node_config,
        boot_id=store.current_boot_id(),
        mps_runner=runner,
        driver=open_driver(config.driver_files),
        others_serving=functools.partial(
            serving.others_serving, config.node.plugin_dir, own=config.dra_socket
        ),
    )
    preparer.reconcile()
    return preparer


def open_driver(files: settings.DriverFiles) -> caching.Driver | None:
    """The node's driver for CDI specs, with the hook installed where the runtime runs it."""
    where = driver_settings(files)
    if where is None:
        return None
    if files.hook_source is not None:
        try:
            hooks.install(files.hook_source, files.hook)
        except driverroot_errors.DriverRootError as exc:  # readiness and prepares say it too
            log.error("driverroot.hook_not_installed", error=str(exc))
    return caching.Driver(where)


def driver_settings(files: settings.DriverFiles) -> caching.Settings | None:
    """Where the driver is; None when specs get no driver (fake GPUs)."""
    if files.root is None:
        return None
    driver = roots.Root.at(files.root, files.root_ctr_path)
    if files.dev_root is not None:
        dev = roots.Root.at(files.dev_root, files.dev_root_ctr_path)
    elif driver.seen("/dev/nvidiactl").exists():
        dev = driver
    else:
        dev = roots.Root.at("/", files.dev_root_ctr_path)
    return caching.Settings(
        roots=roots.Roots(driver=driver, dev=dev, proc=files.proc_root),
        capabilities=files.capabilities,
        hook=files.hook,
    )


def _publish_settings(
    wanted: settings.Publishing, mode: slice_settings.Mode
) -> slice_settings.PublishSettings:
    """What the node publishes: the flags, in the mode decided with the API server."""
    return slice_settings.PublishSettings(
        mode=mode,
        dynamic_mig=wanted.dynamic_mig,
        shared=slice_settings.SharedSettings(
            strategy=wanted.sharing_strategy, compat_shares=wanted.compat_shares
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
