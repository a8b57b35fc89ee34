"""The fake backend's mutable GPU state (MIG mode and instances, compute mode, time-slice, health).

Kept in a JSON file under the plugin dir so that a restarted plugin, a second plugin instance and
the tests all see the same "hardware". Every change is a read-modify-write under an `flock`, written
atomically, and only if something changed. Without a directory the state lives in memory (one
process, e.g. the inventory CLI).

A `Store` keeps what it last read or wrote and reads the file again only when its
`atomicfiles.identity` changed (another process wrote it), as NVML answers from the driver's
memory rather than from a file. Reads (`Store.read`) take no lock: the file is replaced whole, so
any read sees one consistent state. `Store.version` is what the inventory cache compares.

This is our own state, so it is read leniently: GPUs that are not in the current spec are dropped,
missing GPUs start in their power-on state.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
from collections.abc import Hashable, Iterator
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


class EventState(TypedDict):
    gpu: str
    kind: str
    """A `health.sources.EventKind` value."""
    xid: int
    message: str
    time: float


MAX_EVENTS = 1024
"""Events not yet taken by a watcher are kept up to this many (the oldest are dropped), as
NVML's event queue is bounded too."""


class State(TypedDict):
    version: int
    nextSerial: int
    gpus: dict[str, GpuState]
    events: list[EventState]
    """Health events not yet taken by a watcher (tests: `FakeBackend.inject_xid`), oldest first."""
    lost: list[str]
    """GPUs that do not answer (`FakeBackend.lose_gpu`) until reset (`FakeBackend.reset_gpu`)."""


def power_on() -> GpuState:
    return {"migEnabled": False, "computeMode": "DEFAULT", "timeslice": "DEFAULT", "instances": []}


class Store:
    """Transactions over the state of the GPUs named by `gpu_uuids`."""

    def __init__(self, directory: pathlib.Path | None, gpu_uuids: list[str]) -> None:
        self._path = directory / FILE_NAME if directory is not None else None
        self._uuids = gpu_uuids
        self._state: State = self._normalize(None)
        """What was last read or written: handed out read-only, copied for a transaction."""
        self._text = json.dumps(self._state, sort_keys=True)
        self._seen: atomicfiles.Identity | bool | None = False
        """The file's identity when `_state` was read or written; False: never read."""
        self._generation = 0
        """In memory: counts the changes (the file's identity plays that part otherwise)."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Yield the current state; changes made to it are saved when the block succeeds."""
        if self._path is None:
            state = self._copy()
            yield state
            self._keep(state)
            return
        if not self._seen:  # no file yet (or not looked): maybe no directory either
            self._path.parent.mkdir(parents=True, exist_ok=True)
        with atomicfiles.locked(self._path.with_suffix(".lock")):
            state = self._copy() if self._fresh() else self._read_file()
            yield state
            if self._keep(state) or self._seen is None:  # the first write creates the file
                data = json.dumps(state, indent=2, sort_keys=True).encode()
                # Not fsynced: NVML's changes cost no disk flush, the fake's should not either.
                atomicfiles.write_bytes(self._path, data, durable=False)
                self._seen = atomicfiles.identity(self._path)

    def read(self) -> State:
        """The current state, for reading only (never change it: it is shared)."""
        if self._path is not None and not self._fresh():
            self._read_file()
        return self._state

    def version(self) -> Hashable:
        """A value that changes whenever the state may have changed, here or in another process."""
        if self._path is None:
            return self._generation
        return atomicfiles.identity(self._path)

    def _fresh(self) -> bool:
        assert self._path is not None
        return self._seen is not False and atomicfiles.identity(self._path) == self._seen

    def _read_file(self) -> State:
        """Read the file into `_state`; a mutable copy of it."""
        assert self._path is not None
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._seen, raw = None, None
        else:
            with os.fdopen(fd, "rb") as file:
                self._seen = atomicfiles.identity(file.fileno())  # of exactly what is read
                raw = json.loads(file.read())
        self._keep(self._normalize(raw))
        return self._copy()

    def _copy(self) -> State:
        copy: State = json.loads(self._text)
        return copy

    def _keep(self, state: State) -> bool:
        """Make `state` the current one; whether it differs from the one before."""
        text = json.dumps(state, sort_keys=True)
        if text == self._text:
            return False
        self._state, self._text = json.loads(text), text
        self._generation += 1
        return True

    def _normalize(self, raw: Any) -> State:
        raw_gpus = raw.get("gpus", {}) if isinstance(raw, dict) else {}
        next_serial = raw.get("nextSerial", 1) if isinstance(raw, dict) else 1
        raw_events = raw.get("events", []) if isinstance(raw, dict) else []
        raw_lost = raw.get("lost", []) if isinstance(raw, dict) else []
        return {
            "version": VERSION,
            "nextSerial": next_serial if isinstance(next_serial, int) else 1,
            "gpus": {uuid: raw_gpus.get(uuid) or power_on() for uuid in self._uuids},
            "events": [e for e in raw_events if _is_event(e)][-MAX_EVENTS:],
            "lost": [uuid for uuid in self._uuids if uuid in raw_lost],
        }


def _is_event(item: Any) -> bool:
    keys = EventState.__annotations__
    return isinstance(item, dict) and set(item) == set(keys)
