"""An `EventSource` that plays a script: each `wait` returns the next step's events or raises its
error; the GPUs in `lost` do not answer probes. Records what the watcher did with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from dra_driver.health import sources

Step = Sequence[sources.Event] | Exception


class ScriptedSource:
    def __init__(self, steps: Sequence[Step] = ()) -> None:
        self.steps = list(steps)
        self.lost: set[str] = set()
        self.opens = 0
        self.closes = 0
        self.open_errors: list[Exception] = []
        self.played = threading.Event()
        """Set once every step was played."""

    def open(self) -> None:
        self.opens += 1
        if self.open_errors:
            raise self.open_errors.pop(0)

    def wait(self, timeout_s: float) -> Sequence[sources.Event]:
        if not self.steps:
            self.played.set()
            time.sleep(min(timeout_s, 0.01))
            return []
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def probe(self, gpu_uuid: str) -> bool:
        return gpu_uuid not in self.lost

    def close(self) -> None:
        self.closes += 1


def xid(gpu_uuid: str | None, code: int) -> sources.Event:
    return sources.Event(gpu_uuid, sources.EventKind.XID, time.time(), xid=code)


def event(gpu_uuid: str | None, kind: sources.EventKind) -> sources.Event:
    return sources.Event(gpu_uuid, kind, time.time())
