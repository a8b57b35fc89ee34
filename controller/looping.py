"""A duty that repeats: run now, then on demand or every interval, until told to stop.

The cluster controller's leader duties (slice garbage collection, DeviceClass apply) are each a
`Loop` around one idempotent pass. A pass that fails with a retryable API error (conflict, server
busy or unreachable) is tried again after a backoff that doubles up to the interval; one the
server refused for good (forbidden, invalid) is reported at error level and tried again only at
the next interval, since an admin fixing RBAC or a flag is what changes the outcome; so is any
other exception (a bug), with its traceback. Nothing here ends the process: the webhook of the
same process keeps serving whatever a duty runs into.

Before each wait the loop logs ``loop.waiting`` (debug) with the seconds it will wait: the point
after which nothing runs until a wake, that delay or `Loop.stop`. Tests wait for this event to know
that a pass (or a failed attempt) is over and what the loop will do next, instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from controller import errors

log = structlog.get_logger(__name__)


class Loop:
    def __init__(
        self,
        name: str,
        work: Callable[[], None],
        *,
        interval: float,
        first_backoff: float = 1.0,
    ) -> None:
        self.name = name
        self._work = work
        self._interval = interval
        self._first_backoff = min(first_backoff, interval)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.passes = 0
        """Passes completed without error (for tests and logs)."""

    def run(self) -> None:
        """Run passes until `stop`; returns within moments of it."""
        backoff = self._first_backoff
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                self._work()
            except errors.RetryableError as exc:
                log.warning("loop.retrying", loop=self.name, error=str(exc), delay=backoff)
                self._pause(backoff)
                backoff = min(backoff * 2, self._interval)
                continue
            except errors.ApiError as exc:
                log.error("loop.refused", loop=self.name, error=str(exc), delay=self._interval)
            except Exception:  # a bug in one pass must not end the duty for the process's life
                log.exception("loop.failed", loop=self.name, delay=self._interval)
            else:
                self.passes += 1
            backoff = self._first_backoff
            self._pause(self._interval)

    def wake(self) -> None:
        """Run a pass as soon as the current one (if any) is done."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` unless stopped first; True if stopped."""
        return self._stopped.wait(seconds)

    def _pause(self, seconds: float) -> None:
        log.debug("loop.waiting", loop=self.name, delay=seconds)
        self._wake.wait(seconds)
