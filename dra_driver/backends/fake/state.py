"""The fake backend's mutable GPU state (MIG mode and instances, compute mode, time-slice).

Kept in a JSON file under the plugin dir so that a restarted plugin, a second plugin instance and
the tests all see the same "hardware". Every change is a read-modify-write under an `flock`, written
atomically. Without a directory the state lives in memory (one process, e.g. the inventory CLI).

This is our own state, so it is read leniently: GPUs that are not in the current spec are dropped,
missing GPUs start in their power-on state.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import Iterator
from typing import Any, TypedDict

from dra_driver import atomicfiles

FILE_NAME = "fake-gpus.json"
VERSION = 1


class InstanceState(TypedDict):
    profileId: int
    start: int
    size: int
    uuid: str
    gpuInstanceId: int
    computeInstanceId: int


class GpuState(TypedDict):
    migEnabled: bool
    computeMode: str
    timeslice: str
    instances: list[InstanceState]


class HealthState(TypedDict):
    xid: int
    message: str
    time: float


class State(TypedDict):
    version: int
    nextSerial: int
    gpus: dict[str, GpuState]
    health: dict[str, HealthState]
    """Injected health events by GPU UUID (tests: `FakeBackend.inject_xid`)."""


def power_on() -> GpuState:
    return {"migEnabled": False, "computeMode": "DEFAULT", "timeslice": "DEFAULT", "instances": []}


class Store:
    """Transactions over the state of the GPUs named by `gpu_uuids`."""

    def __init__(self, directory: pathlib.Path | None, gpu_uuids: list[str]) -> None:
        self._path = directory / FILE_NAME if directory is not None else None
        self._uuids = gpu_uuids
        self._memory: State = self._normalize(None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Yield the current state; changes made to it are saved when the block succeeds."""
        if self._path is None:
            yield self._memory
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with atomicfiles.locked(self._path.with_suffix(".lock")):
            before = self._read()
            state = self._normalize(before)
            snapshot = json.dumps(state, sort_keys=True)
            yield state
            if before is None or json.dumps(state, sort_keys=True) != snapshot:
                data = json.dumps(state, indent=2, sort_keys=True).encode()
                atomicfiles.write_bytes(self._path, data)

    def _read(self) -> Any:
        assert self._path is not None
        try:
            return json.loads(self._path.read_text())
        except FileNotFoundError:
            return None

    def _normalize(self, raw: Any) -> State:
        raw_gpus = raw.get("gpus", {}) if isinstance(raw, dict) else {}
        next_serial = raw.get("nextSerial", 1) if isinstance(raw, dict) else 1
        raw_health = raw.get("health", {}) if isinstance(raw, dict) else {}
        return {
            "version": VERSION,
            "nextSerial": next_serial if isinstance(next_serial, int) else 1,
            "gpus": {uuid: raw_gpus.get(uuid) or power_on() for uuid in self._uuids},
            "health": {uuid: raw_health[uuid] for uuid in self._uuids if uuid in raw_health},
        }
