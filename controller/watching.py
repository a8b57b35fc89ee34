"""Watches that another thread can cut off at once, for the cluster controller's long-lived loops.

A watch response blocks its reader until the server sends an event or ends the watch, which may be
minutes away; a process told to stop must not wait that long to join its threads. `Watch` keeps
the response of the request in flight and `cancel` shuts its socket down (urllib3's
``HTTPResponse.shutdown``), so the reading thread wakes up at once and its iteration just ends.

`Watch.events` sends one watch request (``?watch=true``) from a given resourceVersion and yields
the events (``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": {...}}``) until
the server ends it; the caller lists again when an ``ERROR`` event says the version is too old.
A server that hangs (or a connection that silently died) ends the watch with an
`errors.UnavailableError` once nothing arrived for longer than the server would keep it open.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from controller import errors, rest

Obj = dict[str, Any]


class Watch:
    """Watch requests on one collection path (``/api/v1/nodes``), one at a time, cancellable."""

    def __init__(self, client: rest.Rest, path: str, *, timeout_seconds: int = 300) -> None:
        self._client = client
        self._path = path
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._response: Any = None
        self._cancelled = False

    def events(self, resource_version: str, **query: str) -> Iterator[Obj]:
        """The events after `resource_version`, until the server ends the watch or `cancel`."""
        response = self._open(
            {
                **query,
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(self._timeout_seconds),
            }
        )
        if response is None:
            return
        finished = False
        try:
            yield from _lines(response)
            finished = True
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if not self.cancelled:
                raise errors.UnavailableError(f"watch of {self._path} broke off: {exc}") from exc
        finally:
            with self._lock:
                self._response = None
            # A watch read to its end leaves a clean connection for the pool; any other does not.
            if finished and not self.cancelled:
                response.release_conn()
            else:
                response.close()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def cancel(self) -> None:
        """End the watch in flight (if any) and refuse new ones; safe from any thread."""
        with self._lock:
            self._cancelled = True
            response = self._response
        if response is not None:
            response.shutdown()

    def _open(self, query: Mapping[str, str]) -> Any:
        api = self._client.api
        serialized = api.param_serialize(
            method="GET",
            resource_path=self._path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        what = f"watch {self._path}"
        try:
            # The server ends the watch after timeoutSeconds (cancel() earlier); only a server
            # that hangs stays silent longer than that.
            silence = self._timeout_seconds + 30
            result = api.call_api(*serialized, _request_timeout=(10, silence))
        except ApiException as exc:
            raise errors.for_status(exc.status or 0, f"{what}: {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.UnavailableError(f"{what}: {exc}") from exc
        response = result.response
        if result.status >= 400:
            body = response.read().decode(errors="replace")
            response.release_conn()
            raise errors.for_status(result.status, f"{what}: HTTP {result.status}: {body[:500]}")
        with self._lock:
            if self._cancelled:
                response.release_conn()
                return None
            self._response = response
        return response


def _lines(response: Any) -> Iterator[Obj]:
    buffer = b""
    for chunk in response.stream(65536):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                event: Obj = json.loads(line)
                yield event
