"""NVML's health events as a `health.sources.EventSource`: one event set over the node's GPUs.

`open` creates the set (``nvmlEventSetCreate``) and registers each GPU for the critical XID,
double-bit and single-bit ECC events it supports (``nvmlDeviceGetSupportedEventTypes``,
``nvmlDeviceRegisterEvents``). A GPU that supports none of them is logged and left unwatched; one
that is already lost is reported lost by the next `wait`; when no GPU can be watched the source is
`UnsupportedError`. `wait` is ``nvmlEventSetWait_v2`` with the timeout: ``TIMEOUT`` is no event,
``GPU_IS_LOST`` (NVML does not say which GPU) makes every GPU be probed and those that are lost
reported, after which the set is opened again (the lost GPU then fails to register and is
reported lost again, which changes nothing), any other error is a `SourceError` (the watcher opens the set again after a backoff).

An event names its GPU by a handle; the UUID is asked from it (``nvmlDeviceGetUUID``) and an
event whose handle does not answer is reported for no GPU. An XID of a MIG instance is reported
for its GPU, with the GPU and compute instance IDs in the detail: the whole GPU is suspect.

`probe` asks a GPU its UUID through the handle discovered at start-up: a lost GPU answers
``GPU_IS_LOST`` until a reset (``nvidia-smi -r``) or re-attach brings it back.
"""

from __future__ import annotations

import time
import types
from collections.abc import Mapping, Sequence

import structlog

from dra_driver.backends.nvml import discovery, translating
from dra_driver.health import sources

log = structlog.get_logger(__name__)

_NO_INSTANCE = 0xFFFFFFFF
"""The GPU/compute instance ID of an event that is not a MIG instance's."""


class NvmlEventSource:
    def __init__(self, nvml: types.ModuleType, gpus: Mapping[str, object]) -> None:
        """`gpus`: NVML handles by GPU UUID (those the node publishes)."""
        self._nvml = nvml
        self._gpus = dict(gpus)
        self._set: object | None = None
        self._pending: list[sources.Event] = []
        self._broken = False
        """The set answered GPU_IS_LOST: open it again (without the lost GPU) before waiting."""
        self._unwatched: set[str] = set()
        """GPUs already logged as unwatchable (logged once per process)."""

    @classmethod
    def of(
        cls, nvml: types.ModuleType, found: Sequence[discovery.DiscoveredGpu]
    ) -> NvmlEventSource:
        return cls(nvml, {gpu.info.uuid: gpu.handle for gpu in found})

    def open(self) -> None:
        nvml = self._nvml
        wanted = (
            int(nvml.nvmlEventTypeXidCriticalError)
            | int(nvml.nvmlEventTypeDoubleBitEccError)
            | int(nvml.nvmlEventTypeSingleBitEccError)
        )
        try:
            self._set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as error:
            raise self._error(error, "create an event set") from error
        watched = 0
        for uuid, handle in self._gpus.items():
            try:
                mask = wanted & int(nvml.nvmlDeviceGetSupportedEventTypes(handle))
                if mask:
                    nvml.nvmlDeviceRegisterEvents(handle, mask, self._set)
                    watched += 1
                    continue
            except nvml.NVMLError as error:
                if translating.is_error(nvml, error, "GPU_IS_LOST"):
                    self._pending.append(sources.Event(uuid, sources.EventKind.LOST, time.time()))
                    continue
                if not translating.is_unsupported(nvml, error):
                    self.close()
                    raise self._error(error, f"register GPU {uuid} for events") from error
            if uuid not in self._unwatched:
                self._unwatched.add(uuid)
                log.warning("health.gpu_unwatched", gpu=uuid, reason="no health events supported")
        if not watched and not self._pending:
            self.close()
            raise sources.UnsupportedError("no GPU of this node supports NVML's XID or ECC events")

    def wait(self, timeout_s: float) -> Sequence[sources.Event]:
        if self._pending:
            pending, self._pending = self._pending, []
            return pending
        if self._broken:
            raise sources.SourceError("the event set reported a lost GPU; opening it again")
        nvml = self._nvml
        try:
            data = nvml.nvmlEventSetWait_v2(self._set, max(1, int(timeout_s * 1000)))
        except nvml.NVMLError as error:
            if translating.is_error(nvml, error, "TIMEOUT"):
                return []
            if translating.is_error(nvml, error, "GPU_IS_LOST"):
                self._broken = True  # it may answer GPU_IS_LOST at once from now on
                return self._lost_gpus()
            raise self._error(error, "wait for events") from error
        event = self._event(data)
        return [event] if event is not None else []

    def probe(self, gpu_uuid: str) -> bool:
        handle = self._gpus.get(gpu_uuid)
        if handle is None:
            return False
        try:
            return bool(discovery.text(self._nvml.nvmlDeviceGetUUID(handle)) == gpu_uuid)
        except self._nvml.NVMLError as error:
            return not translating.is_error(self._nvml, error, "GPU_IS_LOST", "GPU_NOT_FOUND")

    def close(self) -> None:
        event_set, self._set, self._broken = self._set, None, False
        if event_set is None:
            return
        try:
            self._nvml.nvmlEventSetFree(event_set)
        except self._nvml.NVMLError as error:
            log.warning(
                "health.event_set_not_freed", error=translating.error_name(self._nvml, error)
            )

    def _event(self, data: object) -> sources.Event | None:
        nvml = self._nvml
        kind_value = int(getattr(data, "eventType", 0))
        if kind_value == int(nvml.nvmlEventTypeXidCriticalError):
            kind = sources.EventKind.XID
        elif kind_value == int(nvml.nvmlEventTypeDoubleBitEccError):
            kind = sources.EventKind.DOUBLE_BIT_ECC
        elif kind_value == int(nvml.nvmlEventTypeSingleBitEccError):
            kind = sources.EventKind.SINGLE_BIT_ECC
        else:
            return None  # not registered for; NVML does not send it
        try:
            uuid: str | None = discovery.text(nvml.nvmlDeviceGetUUID(getattr(data, "device", None)))
        except nvml.NVMLError:
            uuid = None
        xid = int(getattr(data, "eventData", 0)) if kind is sources.EventKind.XID else 0
        gi, ci = (
            int(getattr(data, "gpuInstanceId", _NO_INSTANCE)),
            int(getattr(data, "computeInstanceId", _NO_INSTANCE)),
        )
        detail = f"MIG GPU instance {gi}, compute instance {ci}" if gi != _NO_INSTANCE else ""
        return sources.Event(uuid, kind, time.time(), xid=xid, detail=detail)

    def _lost_gpus(self) -> list[sources.Event]:
        now = time.time()
        lost = [
            sources.Event(uuid, sources.EventKind.LOST, now)
            for uuid in self._gpus
            if not self.probe(uuid)
        ]
        return lost or [sources.Event(None, sources.EventKind.LOST, now)]

    def _error(self, error: BaseException, doing: str) -> sources.SourceError:
        name = translating.error_name(self._nvml, error)
        kind = sources.UnsupportedError if name == "NOT_SUPPORTED" else sources.SourceError
        return kind(f"NVML failed to {doing}: NVML_ERROR_{name}")
