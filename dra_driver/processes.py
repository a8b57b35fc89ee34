"""What the driver's two processes share about their lives: exit codes and how a signal stops them.

The kubelet plugin (``python -m kubeletplugin``) and the cluster controller (``python -m
controller``) start and stop the same way: flags parsed into one frozen settings object (bad ones
refused by argparse, exit code 2), the API server client built in one place
(`controller.connecting`), then ``run(settings, ..., stop=...)`` until SIGTERM or SIGINT sets
``stop``. Their events share a spelling: ``<process>.started``, ``<process>.signal``,
``<process>.stopped``, and ``<process>.cannot_start`` with a ``reason``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import structlog

STOPPED = 0
"""Exit code of a clean stop (SIGTERM or SIGINT)."""
CANNOT_START = 2
"""Exit code of a process that could not start: bad flags (argparse uses 2 as well), no API server
configuration or credentials, no webhook certificate, no GPUs."""

SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = structlog.get_logger(__name__)


def stop_on_signals(stop: threading.Event, *, event: str) -> None:
    """Set `stop` on SIGTERM or SIGINT, logging `event` (``plugin.signal``) with the signal's name.

    Call from the main thread (Python delivers signals there only); the handler only sets the
    event, so whatever the main thread was doing finishes its step and then winds down.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info(event, signal=signal.Signals(signum).name)
        stop.set()

    for signum in SIGNALS:
        signal.signal(signum, on_signal)
