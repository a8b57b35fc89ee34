"""The node's pool, published by the plugin through the ResourceSlice controller.

At start the plugin decides its mode (``--mode auto`` asks the API server what it can do, see
`controller.capabilities`), then a background thread keeps the node's slices equal to what the
GPUs offer (`controller.slicesync`): at start, after the kubelet wipes them, after anyone edits
them, and on every resync (which also picks up an admin's new MIG instances). The owner reference
to the Node makes the slices go with the Node. Nothing ends the thread but the stop: an error
(the API server down, a refusal, a bug) is logged, counted (`on_error`) and retried after a
backoff, so the slices are repaired once the server is back.

Health: the devices of the GPUs the health ledger holds unhealthy (`dra_driver.health`) carry a
``NoSchedule`` taint (``gpu.dra.dev/xid=<XID>``, or ``gpu.dra.dev/gpu-lost`` for a lost GPU:
`dra_driver.slices.building.taint`) and are UNHEALTHY on the kubelet's health stream. They stay in
the slices (a device that is allocated must never vanish); the taint alone withdraws them from
new allocations. A change of health is published at once by its own thread (`health_changed`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from controller import capabilities, errors, rest, slicediff, slicesync, versions
from dra_driver import backends, hardware, inventory, preparing
from dra_driver.slices import building, settings, splitting
from kubeletplugin import health

log = structlog.get_logger(__name__)


def decide_mode(
    client: rest.Rest, *, requested: str, driver: str, node_name: str, stop: threading.Event
) -> tuple[settings.Mode, str]:
    """The mode (forced, or with ``auto`` the one the API server supports) and the
    ``resource.k8s.io`` version to talk; waits for the server to answer."""
    delay = 0.5
    while True:
        try:
            if requested != "auto":
                served = capabilities.served_versions(client)
                return settings.Mode(requested), versions.choose(served)
            found = capabilities.detect(client, driver=driver, node_name=node_name)
            return found.mode, found.api_version
        except errors.RetryableError as exc:
            log.warning("server.unreachable", error=str(exc), retry_in=delay)
            if stop.wait(delay):
                raise
            delay = min(delay * 2, 30.0)


def node_owner(client: rest.Rest, node_name: str) -> slicediff.Obj | None:
    try:
        node = client.get(f"/api/v1/nodes/{node_name}")
    except errors.NotFoundError:
        log.warning("node.missing", node=node_name, effect="slices without an owner reference")
        return None
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "name": node_name,
        "uid": node["metadata"]["uid"],
        "controller": True,
    }


def pool(
    backend: backends.GpuBackend,
    *,
    node_name: str,
    publish: settings.PublishSettings,
    owned_mig_uuids: set[str],
    board: health.Board,
    unhealthy: Mapping[str, hardware.HealthEvent] | None = None,
) -> list[splitting.SliceContent]:
    """The node's pool as the GPUs are now; the health board learns the same device list.

    The devices of the `unhealthy` GPUs (the health ledger's) are tainted and reported UNHEALTHY.
    """
    node = inventory.discover(backend, node_name=node_name, owned_mig_uuids=owned_mig_uuids)
    unhealthy = unhealthy or {}
    groups = building.build(node, publish, unhealthy)
    by_index = {gpu.index: gpu.uuid for gpu in backend.gpus()}
    board.set_devices(
        _health(node_name, device["name"], unhealthy.get(by_index[group.index]))
        for group in groups
        for device in group.devices
    )
    return splitting.split(groups)


def _health(pool: str, device: str, event: hardware.HealthEvent | None) -> health.DeviceHealth:
    if event is None:
        return health.DeviceHealth(pool=pool, device=device)
    return health.DeviceHealth(
        pool=pool, device=device, healthy=False, message=event.message, updated=int(event.time)
    )


class GpuHealth(Protocol):
    """The GPUs' health as the publisher needs it (`kubeletplugin.healthwatching.Health`)."""

    def unhealthy(self) -> Mapping[str, hardware.HealthEvent]: ...

    def start(self, *, on_change: Callable[[], None]) -> None: ...

    def stop(self) -> None: ...


class Publisher:
    """Computes the node's pool from its GPUs and keeps it published."""

    def __init__(
        self,
        *,
        client: rest.Rest,
        backend: backends.GpuBackend,
        preparer: preparing.Preparer,
        publish: settings.PublishSettings,
        driver: str,
        node_name: str,
        board: health.Board,
        on_dropped: Callable[[int], None] = lambda count: None,
        on_error: Callable[[], None] = lambda: None,
        api_version: str = "v1",
        health: GpuHealth | None = None,
    ) -> None:
        self.client = client
        self.backend = backend
        self.preparer = preparer
        self.publish = publish
        self.driver = driver
        self.node_name = node_name
        self.board = board
        self.on_dropped = on_dropped
        self.on_error = on_error
        """Called once per error logged and retried (for a metric)."""
        self.api_version = api_version
        self.health = health
        """The GPUs' health, read on every publish; watched while the publisher runs."""
        self._thread: threading.Thread | None = None
        self._health_thread: threading.Thread | None = None
        self._health_changed = threading.Event()
        self._sync: _SerialSync | None = None

    def desired(self) -> list[splitting.SliceContent]:
        return pool(
            self.backend,
            node_name=self.node_name,
            publish=self.publish,
            owned_mig_uuids=self.preparer.owned_mig_uuids(),
            board=self.board,
            unhealthy=self.health.unhealthy() if self.health else None,
        )

    def health_changed(self) -> None:
        """A GPU's health changed: publish again soon (never blocks; bursts are coalesced)."""
        self._health_changed.set()

    def start(self, stop: threading.Event, *, resync: float) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(stop, resync), name="slice-publisher", daemon=True
        )
        self._thread.start()
        self._health_thread = threading.Thread(
            target=self._publish_health, args=(stop,), name="slice-health", daemon=True
        )
        self._health_thread.start()
        if self.health is not None:
            self.health.start(on_change=self.health_changed)

    def _publish_health(self, stop: threading.Event) -> None:
        """Publish each health change at once, not at the next resync; the board first, so the
        kubelet hears of it even while the API server is away (the next resync retries)."""
        while not stop.is_set():
            if not self._health_changed.wait(0.5):
                continue
            self._health_changed.clear()
            try:
                sync = self._sync
                if sync is None:
                    self.desired()  # the board only; the slices follow once the sync runs
                else:
                    sync.publish_now(self.desired)
            except errors.ApiError as exc:
                self.on_error()
                log.warning("slices.health_publish_failed", error=str(exc), retry="next resync")
            except Exception:  # a bug must not end the health updates
                self.on_error()
                log.exception("slices.health_publish_failed", retry="next resync")

    def _run(self, stop: threading.Event, resync: float) -> None:
        delay = 0.5
        while True:
            try:
                owner = node_owner(self.client, self.node_name)
                break
            except errors.ApiError as exc:
                log.warning("node.unreadable", error=str(exc), retry_in=delay)
            except Exception:  # a Node without a UID: a bug, not a reason to stop publishing
                log.exception("node.unreadable", retry_in=delay)
            self.on_error()
            if stop.wait(delay):
                return
            delay = min(delay * 2, 30.0)
        target = slicediff.Target(
            driver=self.driver, node_name=self.node_name, pool=self.node_name, owner=owner
        )
        sync = _SerialSync(
            self.client,
            target,
            on_dropped=self.on_dropped,
            on_error=self.on_error,
            api_version=self.api_version,
        )
        self._sync = sync
        sync.run(self.desired, stop, resync=resync)

    def join(self, timeout: float = 2.0) -> None:
        """Stop watching health; wait a little for the threads (a watch of the API server in
        flight ends with the process: they are daemons)."""
        if self.health is not None:
            self.health.stop()
        for thread in (self._thread, self._health_thread):
            if thread is not None:
                thread.join(timeout)


class _SerialSync(slicesync.SliceSync):
    """A slice sync whose publishes never overlap: the health thread publishes between the
    sync's own (each lists, plans and writes the node's slices as one step)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._serial = threading.Lock()

    def publish(self, desired: Sequence[splitting.SliceContent]) -> slicediff.Plan:
        with self._serial:
            return super().publish(desired)

    def publish_now(self, desired: Callable[[], Sequence[splitting.SliceContent]]) -> None:
        """Compute the pool and publish it, both under the lock (the newest health wins)."""
        with self._serial:
            super().publish(desired())
