"""GPU health in the plugin process: its flags, and the watcher wired to the publisher and metrics.

``--no-health-watch`` turns watching off (every GPU healthy, nothing tainted by the driver);
``--health-ignore-xids 74,79`` adds XIDs to the application XIDs that change nothing
(`dra_driver.health.xids`). The watcher's thread (`dra_driver.health.watching`) records unhealthy
GPUs in the ledger under ``<plugin dir>/health/``; the publisher reads it for taints and the
kubelet's health stream and is told of every change; the metrics count XIDs per GPU and code.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from collections.abc import Callable, Mapping

from dra_driver import backends, hardware
from dra_driver.checkpoint import store
from dra_driver.health import ledger, watching, xids
from kubeletplugin import metrics


@dataclasses.dataclass(frozen=True)
class Settings:
    enabled: bool = True
    """Whether GPU health is watched at all."""
    ignored_xids: frozenset[int] = frozenset()
    """XIDs to ignore besides the application XIDs."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--no-health-watch",
        action="store_true",
        help="do not watch GPU health (XID/ECC events): no GPU is ever tainted by the driver",
    )
    add(
        "--health-ignore-xids",
        type=_xids,
        default=frozenset(),
        help="XIDs that change nothing, besides the application XIDs "
        f"{','.join(map(str, sorted(xids.APPLICATION_XIDS)))}; e.g. 74,79",
    )


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings(enabled=not args.no_health_watch, ignored_xids=args.health_ignore_xids)


class Health:
    """The node's GPU health: the ledger, and the watcher that keeps it (None: not watched)."""

    def __init__(
        self,
        config: Settings,
        *,
        backend: backends.GpuBackend,
        plugin_dir: pathlib.Path,
        stats: metrics.Metrics,
        watch: watching.Settings | None = None,
    ) -> None:
        self._book = ledger.Ledger(
            plugin_dir / ledger.DIRECTORY if config.enabled else None,
            boot_id=store.current_boot_id(),
        )
        self._watcher: watching.Watcher | None = None
        self._on_change: Callable[[], None] = lambda: None
        if not config.enabled:
            return
        self._watcher = watching.Watcher(
            backend.health_events(),
            gpus=[gpu.uuid for gpu in backend.gpus()],
            book=self._book,
            settings=watch
            or watching.Settings(classifier=xids.Classifier.with_extra(config.ignored_xids)),
            reporting=watching.Reporting(
                on_change=self._changed,
                on_xid=stats.count_xid,
                on_ecc=stats.count_ecc,
                on_dropped=lambda reason: stats.health_events_dropped.labels(reason).inc(),
            ),
        )

    def _changed(self) -> None:
        self._on_change()  # set by `start`, after the watcher was made

    def unhealthy(self) -> Mapping[str, hardware.HealthEvent]:
        return self._book.unhealthy()

    def start(self, *, on_change: Callable[[], None]) -> None:
        """Start watching; `on_change` is called (from the watcher's thread) on every change."""
        self._on_change = on_change
        if self._watcher is not None:
            self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()


def _xids(text: str) -> frozenset[int]:
    try:
        return xids.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
