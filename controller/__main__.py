"""The cluster controller process: ``python -m controller`` (console script ``gpu-dra-controller``).

Wiring only. Every replica serves the validating admission webhook (`webhook`, when
``--webhook-cert`` and ``--webhook-key`` are given); the replica that holds the Lease
(`leaderelection`) also runs the leader duties, each a loop in its own thread: slice garbage
collection (`slicegc`) and the DeviceClasses (`deviceclasses`). SIGTERM or SIGINT stops it
cleanly: duties stopped and joined, the lease released, the webhook shut down; exit code 0.
Exit code 2: the process could not start (no API server configuration, no certificate).

RBAC it needs: ``resourceslices`` list, delete; ``nodes`` get, list, watch; ``deviceclasses``
get, create, patch; ``leases`` (its namespace) get, create, update.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

import structlog
from kubernetes import client, config

from controller import (
    deviceclasses,
    leaderelection,
    leases,
    looping,
    rest,
    slicegc,
    webhook,
)
from dra_driver import logs

log = structlog.get_logger(__name__)

DEFAULT_DRIVER = "gpu.dra.dev"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-dra-controller", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--driver-name", default=DEFAULT_DRIVER)
    add("--kubeconfig", help="default: in-cluster configuration")
    add(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE") or "default",
        help="namespace of the Lease (default: $POD_NAMESPACE, else 'default')",
    )
    add("--lease-name", default="gpu-dra-controller")
    add(
        "--identity",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="leader-election identity, a random suffix added (default: $POD_NAME, else hostname)",
    )
    add(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="elect a leader through the Lease (--no-leader-elect: this replica always leads)",
    )
    add("--lease-duration", type=float, default=15.0, help="seconds")
    add("--renew-deadline", type=float, default=10.0, help="seconds")
    add("--retry-period", type=float, default=2.0, help="seconds")
    add(
        "--extended-resource-name",
        default="",
        help="extendedResourceName of the whole-GPU class, e.g. gpu.dra.dev/gpu (default: none)",
    )
    add(
        "--gc-interval",
        type=float,
        default=300.0,
        help="seconds between slice garbage-collection passes (also run on Node deletions)",
    )
    add(
        "--classes-interval",
        type=float,
        default=600.0,
        help="seconds between DeviceClass re-applies (they are applied on becoming leader)",
    )
    add("--webhook-cert", type=pathlib.Path, help="serving certificate (PEM), reloaded on change")
    add("--webhook-key", type=pathlib.Path, help="its private key (PEM)")
    add("--webhook-bind", default="0.0.0.0", help="address of the webhook's HTTPS port")
    add("--webhook-port", type=int, default=9443)
    add("--log-format", choices=["console", "json"], default="console")
    add("--log-level", default="info")
    args = parser.parse_args(argv)
    if (args.webhook_cert is None) != (args.webhook_key is None):
        parser.error("--webhook-cert and --webhook-key go together")
    try:
        args.timing = leaderelection.Timing(
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.gc_interval <= 0 or args.classes_interval <= 0:
        parser.error("intervals must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(fmt=args.log_format, level=args.log_level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("controller.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        certificates = (
            webhook.Certificates(args.webhook_cert, args.webhook_key) if args.webhook_cert else None
        )
        api = _api_client(args.kubeconfig)
    except (OSError, ssl.SSLError, config.ConfigException) as exc:
        log.error("controller.cannot_start", error=str(exc))
        return 2
    with api:
        run(args, rest.Rest(api), certificates, stop)
    return 0


def run(
    args: argparse.Namespace,
    api: rest.Rest,
    certificates: webhook.Certificates | None,
    stop: threading.Event,
) -> None:
    """Serve and lead (or follow) until `stop` is set."""
    duties = Duties(
        [
            lambda: slicegc.Collector(api, driver=args.driver_name, interval=args.gc_interval),
            lambda: looping.Loop(
                "deviceclasses",
                lambda: _apply_classes(api, args.driver_name, args.extended_resource_name),
                interval=args.classes_interval,
            ),
        ]
    )
    server = None
    if certificates is not None:
        server = webhook.Webhook(
            address=args.webhook_bind,
            port=args.webhook_port,
            certificates=certificates,
            driver=args.driver_name,
        )
        server.start()
    election = None
    if args.leader_elect:
        store = leases.ApiLeaseStore(
            api,
            namespace=args.namespace,
            name=args.lease_name,
            timeout=args.timing.renew_deadline / 2,
        )
        elector = leaderelection.Elector(
            store, identity=leaderelection.identity(args.identity), timing=args.timing
        )
        election = leaderelection.LeaderElection(
            elector,
            timing=args.timing,
            on_started_leading=duties.start,
            on_stopped_leading=duties.stop,
        )
        electing = threading.Thread(target=election.run, name="leader-election")
        electing.start()
    else:
        duties.start()
    log.info("controller.started", driver=args.driver_name, leader_elect=args.leader_elect)
    try:
        stop.wait()
    finally:
        if election is not None:
            election.stop()
            electing.join()  # stops the duties, then releases the lease
        else:
            duties.stop()
        if server is not None:
            server.stop()
        log.info("controller.stopped")


def _apply_classes(api: rest.Rest, driver: str, extended_resource_name: str) -> None:
    classes = deviceclasses.build(driver, extended_resource_name=extended_resource_name)
    deviceclasses.apply(api, classes)


class Duty(Protocol):
    def run(self) -> None: ...

    def stop(self) -> None: ...


class Duties:
    """The leader's duties, made fresh each time leading starts, each run in its own thread."""

    def __init__(self, factories: list[Callable[[], Duty]]) -> None:
        self._factories = factories
        self._running: list[tuple[Duty, threading.Thread]] = []

    def start(self) -> None:
        for factory in self._factories:
            duty = factory()
            thread = threading.Thread(target=duty.run, name=f"duty-{type(duty).__name__}")
            thread.start()
            self._running.append((duty, thread))

    def stop(self) -> None:
        for duty, _ in self._running:
            duty.stop()
        for _, thread in self._running:
            thread.join()
        self._running.clear()


def _api_client(kubeconfig: str | None) -> client.ApiClient:
    if kubeconfig:
        return config.new_client_from_config(kubeconfig)
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


if __name__ == "__main__":
    sys.exit(main())
