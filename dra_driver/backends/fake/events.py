"""The fake GPUs' health events as a `health.sources.EventSource`: a queue in the state file.

`FakeBackend.inject_xid` (or `lose_gpu`), in any process, appends to the state's ``events``;
`wait` takes them out, as NVML's event set delivers each event once. It polls the state file's
identity (a `stat`) every `POLL_S` while waiting and takes the file's lock only when events are
queued. `probe` answers False for the GPUs in the state's ``lost`` list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dra_driver.backends.fake import state
from dra_driver.health import sources

POLL_S = 0.05
MAX_PER_WAIT = 64


class FakeEventSource:
    def __init__(self, store: state.Store) -> None:
        self._store = store
        self._open = False

    def open(self) -> None:
        self._open = True

    def wait(self, timeout_s: float) -> Sequence[sources.Event]:
        if not self._open:
            raise sources.SourceError("the fake event source is not open")
        deadline = time.monotonic() + timeout_s
        while True:
            if self._store.read()["events"]:
                taken = self._take()
                if taken:
                    return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(POLL_S, remaining))

    def probe(self, gpu_uuid: str) -> bool:
        return gpu_uuid not in self._store.read()["lost"]

    def close(self) -> None:
        self._open = False

    def _take(self) -> list[sources.Event]:
        with self._store.transaction() as current:
            taken = current["events"][:MAX_PER_WAIT]
            current["events"] = current["events"][MAX_PER_WAIT:]
        return [
            sources.Event(
                item["gpu"],
                sources.EventKind(item["kind"]),
                item["time"],
                xid=item["xid"],
                detail=item["message"],
            )
            for item in taken
        ]
