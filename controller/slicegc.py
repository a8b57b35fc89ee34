"""Slice garbage collection: our driver's ResourceSlices whose Node is gone are deleted.

A node's plugin publishes its slices with an owner reference to its Node, so the cluster's garbage
collector removes them with the Node; this duty of the cluster controller's leader covers what
that misses: slices published without the owner reference (or an owner UID that never matched),
and clusters whose garbage collector is slow or off. A slice is removed when its ``spec.nodeName``
names a Node that does not exist; slices without ``nodeName`` (node selectors, all nodes) are
left alone, since no single Node vouches for them.

`collect` is one pass. The delete carries the slice's UID and resourceVersion as preconditions, so
a slice that was re-created or rewritten meanwhile (the node came back and published again) is
not deleted by mistake; the next pass looks again. `Collector` runs the passes: at start, after
every Node deletion seen by a watch on Nodes, and every interval.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import structlog

from controller import errors, looping, rest, watching

log = structlog.get_logger(__name__)

SLICES = "/apis/resource.k8s.io/v1/resourceslices"
NODES = "/api/v1/nodes"
PAGE = "500"


def collect(client: rest.Rest, *, driver: str) -> list[str]:
    """Delete the slices of `driver` whose node no longer exists; the names of those deleted."""
    exists: dict[str, bool] = {}
    deleted = []
    for item in _slices(client, driver):
        node = (item.get("spec") or {}).get("nodeName")
        if not node:
            continue
        if node not in exists:
            exists[node] = _node_exists(client, node)
        if not exists[node] and _delete(client, item, node=node):
            deleted.append(item["metadata"]["name"])
    return deleted


def _slices(client: rest.Rest, driver: str) -> Iterator[rest.Obj]:
    query = {"fieldSelector": f"spec.driver={driver}", "limit": PAGE}
    while True:
        page = client.get(SLICES, **query)
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return
        query["continue"] = token


def _node_exists(client: rest.Rest, name: str) -> bool:
    try:
        client.get(f"{NODES}/{name}")
    except errors.NotFoundError:
        return False
    return True


def _delete(client: rest.Rest, item: rest.Obj, *, node: str) -> bool:
    meta = item["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
    }
    try:
        client.request("DELETE", f"{SLICES}/{meta['name']}", body=body)
    except errors.NotFoundError:
        return False  # gone already: someone else collected it
    except errors.ConflictError:
        log.info("slicegc.changed_meanwhile", slice=meta["name"], node=node)
        return False
    log.info("slicegc.deleted", slice=meta["name"], node=node)
    return True


class Collector:
    """Collects at start, after each Node deletion (watched), and every `interval` seconds."""

    def __init__(self, client: rest.Rest, *, driver: str, interval: float) -> None:
        self._client = client
        self._driver = driver
        self._loop = looping.Loop("slicegc", self._pass, interval=interval)
        self._watch = watching.Watch(client, NODES)
        self.deleted: list[str] = []
        """Every slice this collector deleted, in order (for tests and logs)."""

    def run(self) -> None:
        """Run until `stop`; the Node watch runs beside it, in its own thread."""
        watcher = threading.Thread(target=self._watch_nodes, name="slicegc-nodes")
        watcher.start()
        try:
            self._loop.run()
        finally:
            self._loop.stop()
            self._watch.cancel()
            watcher.join()

    def stop(self) -> None:
        self._loop.stop()
        self._watch.cancel()

    def _pass(self) -> None:
        deleted = collect(self._client, driver=self._driver)
        self.deleted.extend(deleted)
        log.debug("slicegc.pass", deleted=len(deleted))

    def _watch_nodes(self) -> None:
        backoff = 1.0
        version = ""
        while not self._loop.stopped:
            try:
                if not version:
                    version = self._client.get(NODES, limit="1")["metadata"]["resourceVersion"]
                    # A Node deleted before the watch began (or while it was down) is seen by
                    # no event: one more pass covers it.
                    self._loop.wake()
                version = self._follow(version)
                backoff = 1.0
            except errors.ApiError as exc:
                log.warning("slicegc.watch_failed", error=str(exc), delay=backoff)
                version = ""
                if self._loop.wait(backoff):
                    return
                backoff = min(backoff * 2, 30.0)

    def _follow(self, version: str) -> str:
        """Watch Nodes from `version`; the version to go on from ("" to list again)."""
        for event in self._watch.events(version):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":  # typically 410 Gone: the version is too old to resume from
                log.info("slicegc.watch_expired", status=obj.get("message", ""))
                return ""
            version = (obj.get("metadata") or {}).get("resourceVersion") or version
            if kind == "DELETED":
                log.info("slicegc.node_deleted", node=obj["metadata"]["name"])
                self._loop.wake()
        return version
