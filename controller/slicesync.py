"""The ResourceSlice controller: keeps the API server's slices of one node's pool equal to the desired.

Used by every node's plugin. `SliceSync.publish` lists the pool's slices, plans the writes
(`slicediff`) and sends them with preconditions; conflicts and server errors are retried with
backoff. `SliceSync.run` publishes, then watches the node's slices and publishes again when they
change (someone edited or deleted one, the kubelet wiped them at its start) or every `resync`
seconds; the desired pool is recomputed each time, so a changed node is picked up too. `run`
ends only when told to stop: any error (the server down or hung, a refusal, a bug in computing
the pool) is logged, reported to `on_error` and followed by a new attempt after a backoff.

A server that stores something other than what was sent (a field its feature gates drop, a
normalized value) is detected after each write: the difference is logged once with its paths,
counted in `dropped_fields`, and the stored form is remembered so that the same desired pool
causes no further writes (instead of an update loop).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog

from controller import errors, rest, slicediff, versions
from dra_driver.slices import splitting

log = structlog.get_logger(__name__)

PATH = versions.slices_path("v1")


class SliceSync:
    def __init__(
        self,
        client: rest.Rest,
        target: slicediff.Target,
        *,
        attempts: int = 6,
        backoff: float = 0.2,
        on_dropped: Callable[[int], None] = lambda count: None,
        on_error: Callable[[], None] = lambda: None,
        api_version: str = "v1",
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.path = versions.slices_path(api_version)
        self.target = target
        self.attempts = attempts
        self.backoff = backoff
        self.on_dropped = on_dropped
        """Called with the number of dropped field paths whenever it grows (for a metric)."""
        self.on_error = on_error
        """Called once per failed attempt of `run` (for a metric)."""
        self.dropped_fields: set[str] = set()
        """Paths of fields the server did not store as sent (empty on a fully capable server)."""
        self._stored: dict[str, slicediff.Obj] = {}

    def publish(self, desired: Sequence[splitting.SliceContent]) -> slicediff.Plan:
        """Make the server's pool equal `desired`; return what was written."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                existing = self.list()
                plan = slicediff.plan(desired, existing, self.target, stored_form=self._stored_form)
                self._apply(plan)
            except errors.RetryableError as exc:
                if attempt == self.attempts:
                    raise
                log.warning("slices.publish_retry", attempt=attempt, error=str(exc), delay=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if plan.writes:
                log.info(
                    "slices.published",
                    pool=self.target.pool,
                    generation=plan.generation,
                    deleted=len(plan.deletes),
                    updated=len(plan.updates),
                    created=len(plan.creates),
                )
            return plan
        raise AssertionError("unreachable")

    def list(self) -> list[slicediff.Obj]:
        selector = f"spec.driver={self.target.driver},spec.nodeName={self.target.node_name}"
        items: list[slicediff.Obj] = (
            self.client.get(self.path, fieldSelector=selector).get("items") or []
        )
        return [versions.from_server(item, self.api_version) for item in items]

    def run(
        self,
        desired: Callable[[], Sequence[splitting.SliceContent]],
        stop: threading.Event,
        *,
        resync: float = 60.0,
        settle: float = 0.3,
    ) -> None:
        """Publish, then republish on every change of the node's slices, until `stop` is set."""
        delay = self.backoff
        while not stop.is_set():
            try:
                self.publish(desired())
                for _ in self._changes(stop, resync):
                    stop.wait(settle)  # let a burst of events (a wipe, our own writes) settle
                    if stop.is_set():
                        return
                    self.publish(desired())
                delay = self.backoff
            except errors.ApiError as exc:
                self.on_error()
                log.warning("slices.sync_failed", error=str(exc), retry_in=delay)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
            except Exception:  # a bug (or a backend error) must not end the pool's publishing
                self.on_error()
                log.exception("slices.sync_crashed", retry_in=delay)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _changes(self, stop: threading.Event, resync: float) -> Iterator[None]:
        """One item per change to the node's slices seen by a watch, ending after `resync`."""
        selector = f"spec.driver={self.target.driver},spec.nodeName={self.target.node_name}"
        listed = self.client.get(self.path, fieldSelector=selector)
        version = listed.get("metadata", {}).get("resourceVersion", "")
        watch = self.client.watch(
            self.path,
            timeout_seconds=max(1, int(resync)),
            fieldSelector=selector,
            resourceVersion=version,
            allowWatchBookmarks="false",
        )
        for event in watch:
            if stop.is_set():
                return
            if event.get("type") in {"ADDED", "MODIFIED", "DELETED"}:
                yield None
            elif event.get("type") == "ERROR":
                return

    def _apply(self, plan: slicediff.Plan) -> None:
        for obsolete in plan.deletes:
            meta = obsolete["metadata"]
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            }
            with contextlib.suppress(errors.NotFoundError):
                self.client.request("DELETE", f"{self.path}/{meta['name']}", body=body)
        for updated in plan.updates:
            stored = self._send("PUT", f"{self.path}/{updated['metadata']['name']}", updated)
            self._learn(updated["spec"], stored["spec"])
        for created in plan.creates:
            stored = self._send("POST", self.path, created)
            self._learn(created["spec"], stored["spec"])

    def _send(self, method: str, path: str, obj: slicediff.Obj) -> slicediff.Obj:
        body = versions.to_server(obj, self.api_version)
        return versions.from_server(self.client.request(method, path, body=body), self.api_version)

    def _stored_form(self, spec: slicediff.Obj) -> slicediff.Obj:
        return self._stored.get(_key(spec), spec)

    def _learn(self, sent: slicediff.Obj, stored: slicediff.Obj) -> None:
        if stored == sent:
            return
        paths = sorted(set(_differences(sent, stored, "spec")))
        new = set(paths) - self.dropped_fields
        self.dropped_fields.update(paths)
        if new:
            self.on_dropped(len(self.dropped_fields))
            log.warning(
                "slices.fields_dropped",
                pool=self.target.pool,
                paths=sorted(new)[:20],
                count=len(new),
                hint="the API server lacks a feature (e.g. DRAPartitionableDevices or "
                "DRAConsumableCapacity): publish in compatibility mode",
            )
        self._stored[_key(sent)] = stored


def _key(spec: slicediff.Obj) -> str:
    return json.dumps(spec, sort_keys=True)


def _differences(sent: Any, stored: Any, path: str) -> Iterator[str]:
    """Paths where `stored` lacks or changed what `sent` had (list items by name or index)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        for key, value in sent.items():
            if key not in stored:
                yield f"{path}.{key}"
            else:
                yield from _differences(value, stored[key], f"{path}.{key}")
    elif isinstance(sent, list) and isinstance(stored, list):
        for index, item in enumerate(sent):
            label = item.get("name", index) if isinstance(item, dict) else index
            if index >= len(stored):
                yield f"{path}[{label}]"
            else:
                yield from _differences(item, stored[index], f"{path}[{label}]")
    elif sent != stored:
        yield path
