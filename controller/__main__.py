"""The cluster controller process: ``python -m controller`` (console script ``gpu-dra-controller``).

Wiring only: the flags parsed into one `settings.Settings`, the API client made by
`connecting.connect`, both passed to `run`. Every replica serves the validating admission webhook
(`webhook`, when ``--webhook-cert`` and ``--webhook-key`` are given); the replica that holds the
Lease (`leaderelection`) also runs the leader duties, each a loop in its own thread: slice garbage
collection (`slicegc`) and the DeviceClasses (`deviceclasses`).

Exit codes, the same as the kubelet plugin's (`dra_driver.processes`):

- 0: a clean stop on SIGTERM or SIGINT (duties stopped and joined, the lease released, the
  webhook shut down);
- 2: it could not start: a bad flag (argparse's usage message), no API server configuration or
  credentials, an unreadable webhook certificate (log ``controller.cannot_start`` with a
  ``reason``).

RBAC it needs: ``resourceslices`` list, delete; ``nodes`` get, list, watch; ``deviceclasses``
get, create, patch; ``leases`` (its namespace) get, create, update.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from controller import (
    connecting,
    deviceclasses,
    errors,
    leaderelection,
    leases,
    looping,
    rest,
    settings,
    slicegc,
    webhook,
)
from dra_driver import logs, processes

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    config = settings.parse(argv)
    logs.configure(fmt=config.logging.format, level=config.logging.level)
    try:
        certificates = _certificates(config.webhook)
    except (OSError, ssl.SSLError) as exc:
        log.error("controller.cannot_start", reason="certificate", error=str(exc))
        return processes.CANNOT_START
    try:
        api = connecting.connect(config.kubeconfig)
    except errors.ConfigurationError as exc:
        log.error("controller.cannot_start", reason="api_configuration", error=str(exc))
        return processes.CANNOT_START
    stop = threading.Event()
    processes.stop_on_signals(stop, event="controller.signal")
    with api.api:
        run(config, api=api, certificates=certificates, stop=stop)
    return processes.STOPPED


def run(
    config: settings.Settings,
    *,
    api: rest.Rest,
    certificates: webhook.Certificates | None,
    stop: threading.Event,
) -> None:
    """Serve and lead (or follow) until `stop` is set."""
    duties = Duties(
        [
            lambda: slicegc.Collector(api, driver=config.driver_name, interval=config.gc_interval),
            lambda: looping.Loop(
                "deviceclasses",
                lambda: _apply_classes(api, config.driver_name, config.extended_resource_name),
                interval=config.classes_interval,
            ),
        ]
    )
    server = None
    if config.webhook is not None and certificates is not None:
        server = webhook.Webhook(
            address=config.webhook.bind,
            port=config.webhook.port,
            certificates=certificates,
            driver=config.driver_name,
        )
        server.start()
    election = None
    if config.election.enabled:
        election = _election(config.election, api, duties)
        electing = threading.Thread(target=election.run, name="leader-election")
        electing.start()
    else:
        duties.start()
    log.info("controller.started", driver=config.driver_name, leader_elect=config.election.enabled)
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


def _certificates(config: settings.Webhook | None) -> webhook.Certificates | None:
    return webhook.Certificates(config.cert, config.key) if config is not None else None


def _election(
    config: settings.Election, api: rest.Rest, duties: Duties
) -> leaderelection.LeaderElection:
    store = leases.ApiLeaseStore(
        api,
        namespace=config.namespace,
        name=config.lease_name,
        timeout=config.timing.renew_deadline / 2,
    )
    elector = leaderelection.Elector(
        store, identity=leaderelection.identity(config.identity), timing=config.timing
    )
    return leaderelection.LeaderElection(
        elector,
        timing=config.timing,
        on_started_leading=duties.start,
        on_stopped_leading=duties.stop,
    )


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


if __name__ == "__main__":
    sys.exit(main())
