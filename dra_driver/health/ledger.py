"""The unhealthy GPUs of this node: why each one is, kept across plugin restarts within a boot.

The watcher is the only writer; the publisher reads `Ledger.unhealthy` (a copy taken under a lock
held for a dictionary copy, so a reader never waits for the watcher's NVML calls or file writes).

A GPU stays unhealthy until one of these, and only these, happens:
- it was lost and answers again (a GPU reset or re-attach brought it back: `watching`);
- an admin asks for it: an empty file ``clear-<GPU UUID>`` (or ``clear-all``) in the ledger's
  directory (``<plugin dir>/health/``), which the watcher takes within a second and removes;
- the node reboots (which resets every GPU): the ledger is kept with the boot ID and a ledger of
  another boot is dropped.
A plugin restart (a rolling update) keeps the taints, as it must: the GPU did not change.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Mapping
from typing import Any, TypedDict

import structlog

from dra_driver import atomicfiles, hardware

log = structlog.get_logger(__name__)

DIRECTORY = "health"
"""Below the plugin dir."""
STATE_FILE = "state.json"
CLEAR_PREFIX = "clear-"
CLEAR_ALL = "clear-all"
VERSION = 1


class _EventState(TypedDict):
    xid: int
    message: str
    time: float


class _State(TypedDict):
    version: int
    bootId: str
    gpus: dict[str, _EventState]


class Ledger:
    """Unhealthy GPUs by UUID; persisted in `directory` (None: in memory only)."""

    def __init__(self, directory: pathlib.Path | None, *, boot_id: str) -> None:
        self.directory = directory
        self._boot_id = boot_id
        self._lock = threading.Lock()
        self._unhealthy: dict[str, hardware.HealthEvent] = self._load()

    def unhealthy(self) -> Mapping[str, hardware.HealthEvent]:
        """The unhealthy GPUs now (a copy)."""
        with self._lock:
            return dict(self._unhealthy)

    def mark(self, event: hardware.HealthEvent) -> bool:
        """Record that a GPU is unhealthy; whether that changed anything.

        The first event stays the reason (a flood of XIDs changes nothing), except that a lost
        GPU is lost whatever came before.
        """
        with self._lock:
            current = self._unhealthy.get(event.gpu_uuid)
            if current is not None and (current.lost or not event.lost):
                return False
            self._unhealthy[event.gpu_uuid] = event
        self._save()
        return True

    def clear(self, gpu_uuid: str) -> bool:
        """The GPU is healthy again; whether it was unhealthy."""
        with self._lock:
            gone = self._unhealthy.pop(gpu_uuid, None)
        if gone is not None:
            self._save()
        return gone is not None

    def take_clear_requests(self) -> set[str]:
        """The GPUs an admin asked to clear (``*``: all), their request files removed."""
        if self.directory is None:
            return set()
        try:
            names = [entry.name for entry in self.directory.iterdir()]
        except FileNotFoundError:
            return set()
        wanted: set[str] = set()
        for name in names:
            if not name.startswith(CLEAR_PREFIX):
                continue
            wanted.add("*" if name == CLEAR_ALL else name.removeprefix(CLEAR_PREFIX))
            atomicfiles.remove(self.directory / name, durable=False)
        return wanted

    def _load(self) -> dict[str, hardware.HealthEvent]:
        if self.directory is None:
            return {}
        path = self.directory / STATE_FILE
        try:
            raw: Any = json.loads(path.read_text())
            if not isinstance(raw, dict) or raw.get("bootId") != self._boot_id:
                return {}  # another boot reset every GPU (or the file is not ours)
            return {
                uuid: hardware.HealthEvent(
                    uuid, int(item["xid"]), str(item["message"]), float(item["time"])
                )
                for uuid, item in raw.get("gpus", {}).items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("health.ledger_unreadable", path=str(path), error=str(error))
            return {}

    def _save(self) -> None:
        if self.directory is None:
            return
        with self._lock:
            state: _State = {
                "version": VERSION,
                "bootId": self._boot_id,
                "gpus": {
                    uuid: {"xid": e.xid, "message": e.message, "time": e.time}
                    for uuid, e in sorted(self._unhealthy.items())
                },
            }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            data = json.dumps(state, indent=2).encode()
            atomicfiles.write_bytes(self.directory / STATE_FILE, data)
        except OSError as error:  # kept in memory; a restart would forget it
            log.error("health.ledger_not_saved", error=str(error))
