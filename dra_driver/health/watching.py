"""The health watcher: one daemon thread from a backend's events to the ledger.

It waits on the backend's `sources.EventSource` for at most `Settings.wait_s` at a time, so it
notices a stop, an admin's clear request and the time to probe within that. It shares nothing
with prepares but the ledger's small lock, so a hung NVML call stalls only itself. What it does
with each event:

| event | effect |
|---|---|
| application XID (`xids.APPLICATION_XIDS`, ``--health-ignore-xids``) | counted, logged |
| any other XID, a double-bit ECC error (as XID 48) | counted; the GPU unhealthy with that XID |
| single-bit ECC error | counted |
| the GPU lost | the GPU unhealthy as lost (it stays so until it answers again) |
| for a GPU this node does not publish, or for no GPU | counted as dropped, logged once |

Every `Settings.probe_interval_s` the unhealthy GPUs are probed: a lost GPU that answers again
(after a reset) is healthy; a GPU with a fatal XID that stops answering is lost. A GPU with a
fatal XID that still answers stays unhealthy until an admin clears it or the node reboots (NVML
cannot tell that it was reset), see `ledger`.

Errors never end the thread: a source that cannot watch this node at all is logged once and only
probed; any other error closes the source and opens it again after a backoff (up to
`Settings.max_backoff_s`). Logs of repeated events are throttled (one line per GPU and XID per
`LOG_EVERY_S`, with the count of those left out), so a flood costs counters, not log volume.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection, Sequence

import structlog

from dra_driver import hardware
from dra_driver.health import ledger, sources, xids

log = structlog.get_logger(__name__)

LOG_EVERY_S = 60.0
_MAX_THROTTLED_KEYS = 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    classifier: xids.Classifier = dataclasses.field(default_factory=xids.Classifier)
    """Which XIDs make a GPU unhealthy."""
    wait_s: float = 1.0
    """Longest single wait for events; also how soon a stop or a clear request is noticed."""
    probe_interval_s: float = 10.0
    """Seconds between probes of the unhealthy GPUs (recovery of a lost GPU)."""
    max_backoff_s: float = 60.0
    """Longest pause before the source is opened again after an error."""


@dataclasses.dataclass(frozen=True)
class Reporting:
    """Where the watcher reports what it saw (metrics); each call must be quick."""

    on_change: Callable[[], None] = lambda: None
    """The ledger changed: publish again."""
    on_xid: Callable[[str, int], None] = lambda gpu_uuid, xid: None
    on_ecc: Callable[[str, str], None] = lambda gpu_uuid, kind: None
    """``single`` or ``double``."""
    on_dropped: Callable[[str], None] = lambda reason: None
    """``unknown-gpu`` or ``no-gpu``."""


class Watcher:
    """Watches `source` for the GPUs `gpus` (UUIDs) and records their health in `book`."""

    def __init__(
        self,
        source: sources.EventSource,
        *,
        gpus: Collection[str],
        book: ledger.Ledger,
        settings: Settings,
        reporting: Reporting | None = None,
    ) -> None:
        self._source = source
        self._gpus = frozenset(gpus)
        self._book = book
        self._settings = settings
        self._report = reporting or Reporting()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._throttle = _Throttle()
        self._last_clear_check = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="health-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (a wait in progress ends within `Settings.wait_s`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._settings.wait_s + 5.0 if timeout is None else timeout)

    def run(self) -> None:
        """The thread's body: until stopped, whatever happens."""
        settings = self._settings
        opened, watching, delay = False, True, 0.5
        next_probe = time.monotonic() + settings.probe_interval_s
        self._forget_gpus_not_here()
        while not self._stop.is_set():
            try:
                if watching and not opened:
                    self._source.open()
                    opened = True
                    log.info("health.watching", gpus=len(self._gpus))
                if opened:
                    self.handle(self._source.wait(settings.wait_s))
                else:
                    self._stop.wait(settings.wait_s)
                self._take_clear_requests()
                if time.monotonic() >= next_probe:
                    self.probe()
                    next_probe = time.monotonic() + settings.probe_interval_s
                delay = 0.5
            except sources.UnsupportedError as error:
                log.warning("health.unwatched", error=str(error), effect="probes only")
                self._source.close()
                opened, watching = False, False
            except Exception as error:  # a source error, or a bug: never the end of watching
                if isinstance(error, sources.SourceError):
                    log.warning("health.source_failed", error=str(error), retry_in=delay)
                else:
                    log.exception("health.watch_failed", retry_in=delay)
                self._source.close()
                opened = False
                self._stop.wait(delay)
                delay = min(delay * 2, settings.max_backoff_s)
        self._source.close()

    def handle(self, events: Sequence[sources.Event]) -> None:
        """Count, classify and record `events`."""
        for event in events:
            self._handle(event)

    def probe(self) -> None:
        """Lost GPUs that answer again are healthy; unhealthy ones that stopped answering lost."""
        for gpu_uuid, event in self._book.unhealthy().items():
            answers = self._source.probe(gpu_uuid)
            if event.lost and answers:
                if self._book.clear(gpu_uuid):
                    log.info("health.recovered", gpu=gpu_uuid, reason="the GPU answers again")
                    self._report.on_change()
            elif not event.lost and not answers:
                self._mark(hardware.HealthEvent(gpu_uuid, 0, _LOST_MESSAGE, time.time()))

    def _handle(self, event: sources.Event) -> None:
        uuid = event.gpu_uuid
        if uuid is None or uuid not in self._gpus:
            reason = "no-gpu" if uuid is None else "unknown-gpu"
            self._report.on_dropped(reason)
            self._log(
                ("dropped", uuid),
                "health.event_dropped",
                reason=reason,
                gpu=uuid,
                kind=event.kind.value,
                xid=event.xid,
            )
            return
        kind = event.kind
        if kind is sources.EventKind.SINGLE_BIT_ECC:
            self._report.on_ecc(uuid, "single")
            self._log((uuid, "sbe"), "health.ecc_corrected", gpu=uuid)
            return
        if kind is sources.EventKind.LOST:
            self._mark(hardware.HealthEvent(uuid, 0, _LOST_MESSAGE, event.time))
            return
        if kind is sources.EventKind.DOUBLE_BIT_ECC:
            self._report.on_ecc(uuid, "double")
            xid = xids.DOUBLE_BIT_ECC_XID
        else:
            xid = event.xid
            self._report.on_xid(uuid, xid)
            if not self._settings.classifier.is_fatal(xid):
                self._log(
                    (uuid, xid),
                    "health.xid_ignored",
                    gpu=uuid,
                    xid=xid,
                    reason="caused by the application",
                    detail=event.detail,
                )
                return
        message = xids.describe(xid) + (f": {event.detail}" if event.detail else "")
        if not self._mark(hardware.HealthEvent(uuid, xid, message, event.time)):
            self._log((uuid, xid), "health.xid_repeated", gpu=uuid, xid=xid)

    def _mark(self, event: hardware.HealthEvent) -> bool:
        if not self._book.mark(event):
            return False
        log.error(
            "health.unhealthy",
            gpu=event.gpu_uuid,
            xid=event.xid,
            lost=event.lost,
            message=event.message,
        )
        self._report.on_change()
        return True

    def _take_clear_requests(self) -> None:
        now = time.monotonic()
        if now - self._last_clear_check < min(1.0, self._settings.wait_s):
            return
        self._last_clear_check = now
        wanted = self._book.take_clear_requests()
        targets = set(self._book.unhealthy()) if "*" in wanted else wanted
        cleared = [uuid for uuid in sorted(targets) if self._book.clear(uuid)]
        for uuid in sorted(wanted - {"*"} - set(cleared)):
            log.warning("health.clear_ignored", gpu=uuid, reason="not unhealthy on this node")
        if cleared:
            log.info("health.cleared", gpus=cleared, by="admin")
            self._report.on_change()

    def _forget_gpus_not_here(self) -> None:
        for uuid in set(self._book.unhealthy()) - self._gpus:
            self._book.clear(uuid)
            log.info("health.forgotten", gpu=uuid, reason="no longer on this node")

    def _log(self, key: object, event: str, **fields: object) -> None:
        allowed, left_out = self._throttle.allow(key)
        if allowed:
            log.warning(event, **fields, **({"repeats_not_logged": left_out} if left_out else {}))


_LOST_MESSAGE = "GPU is lost: it does not answer (NVML_ERROR_GPU_IS_LOST)"


class _Throttle:
    """One log line per key per `LOG_EVERY_S`; counts what it left out. Bounded in size."""

    def __init__(self) -> None:
        self._seen: dict[object, tuple[float, int]] = {}

    def allow(self, key: object) -> tuple[bool, int]:
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < LOG_EVERY_S:
            self._seen[key] = (last[0], last[1] + 1)
            return False, 0
        if len(self._seen) >= _MAX_THROTTLED_KEYS:
            self._seen.clear()
        self._seen[key] = (now, 0)
        return True, last[1] if last else 0
