"""A small in-memory API server behind `rest.Rest.request`, for the cluster controller's unit tests.

Objects live under their item path (``/api/v1/nodes/n1``); a GET on a collection path lists its
items (``fieldSelector`` on dotted fields, ``limit``/``continue`` paging); POST creates (name or
generateName), PUT updates with optimistic concurrency (a stale resourceVersion is a 409), DELETE
honours UID and resourceVersion preconditions (409). Every request is recorded in `calls`;
`before` hooks run before a request is answered, to change the world in between.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from controller import errors, rest

Obj = dict[str, Any]


class FakeApi(rest.Rest):
    def __init__(self) -> None:
        super().__init__(api=None)
        self.objects: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.before: list[Callable[[str, str], None]] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    def add(self, collection: str, obj: Obj) -> Obj:
        """Store `obj` as the server would on create; the stored copy."""
        return self._create(collection, copy.deepcopy(obj))

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Obj:
        self.calls.append((method, path))
        for hook in self.before:
            hook(method, path)
        payload: Obj = copy.deepcopy(body) if isinstance(body, dict) else {}
        if method == "GET":
            return self._get(path, dict(query or {}))
        if method == "POST":
            return self._create(path, payload)
        if method == "PUT":
            return self._update(path, payload)
        if method == "DELETE":
            return self._delete(path, payload.get("preconditions") or {})
        raise AssertionError(f"unexpected {method} {path}")

    def _get(self, path: str, query: dict[str, str]) -> Obj:
        if path in self.objects:
            return copy.deepcopy(self.objects[path])
        if path.rsplit("/", 1)[-1] not in _COLLECTIONS:
            raise errors.NotFoundError(f"GET {path}: not found", status=404)
        # Continue tokens are keys, as on a real server: deletions between pages shift nothing.
        after = query.get("continue") or ""
        items = [
            (key, obj)
            for key, obj in sorted(self.objects.items())
            if key.rsplit("/", 1)[0] == path and key > after
        ]
        selector = query.get("fieldSelector")
        if selector:
            field, value = selector.split("=", 1)
            items = [(key, obj) for key, obj in items if _field(obj, field) == value]
        limit = int(query.get("limit") or 0) or len(items)
        meta = {"resourceVersion": str(next(self._versions))}
        if len(items) > limit:
            meta["continue"] = items[limit - 1][0]
        return {"items": [copy.deepcopy(obj) for _, obj in items[:limit]], "metadata": meta}

    def _create(self, collection: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if "name" not in meta:
            meta["name"] = f"{meta['generateName']}{next(self._uids):05d}"
        path = f"{collection}/{meta['name']}"
        if path in self.objects:
            raise errors.ConflictError(f"POST {collection}: exists", status=409)
        meta["uid"] = f"uid-{next(self._uids)}"
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def _update(self, path: str, obj: Obj) -> Obj:
        current = self.objects.get(path)
        if current is None:
            raise errors.NotFoundError(f"PUT {path}: not found", status=404)
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.ConflictError(f"PUT {path}: the object has been modified", status=409)
        obj["metadata"]["uid"] = current["metadata"]["uid"]
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def _delete(self, path: str, preconditions: Obj) -> Obj:
        current = self.objects.get(path)
        if current is None:
            raise errors.NotFoundError(f"DELETE {path}: not found", status=404)
        for key in ("uid", "resourceVersion"):
            if key in preconditions and preconditions[key] != current["metadata"][key]:
                raise errors.ConflictError(f"DELETE {path}: precondition failed", status=409)
        del self.objects[path]
        return {"kind": "Status", "status": "Success"}

    def touch(self, path: str) -> None:
        """Rewrite the stored object (a new resourceVersion), as another writer would."""
        self.objects[path]["metadata"]["resourceVersion"] = str(next(self._versions))


_COLLECTIONS = {"nodes", "resourceslices", "leases", "deviceclasses"}


def _field(obj: Obj, dotted: str) -> object:
    value: object = obj
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value
