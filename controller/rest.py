"""Plain-JSON requests to the API server through the official client's transport and credentials.

The controllers send and read ``resource.k8s.io`` objects as JSON dicts, never as client models:
an older client's models drop fields they do not know, and the ResourceSlice controller must
compare exactly what it sent with what the server stored. Authentication, TLS and token refresh
come from the `kubernetes` client's configuration.

Every request is bounded in time (`timeout`: seconds for the whole request, connecting included)
and sent once: urllib3's own retries are switched off, because they would wait out the timeout up
to four times over against a hung server, and raise a ``MaxRetryError`` the caller never sees
coming. Retrying is the caller's decision, made on the error tree of `errors` (a backoff, or the
kubelet's next call).

A request costs one round trip on a kept-alive connection: the pools keep `POOL_SIZE` connections
(the client's default, five per CPU, is fewer than the kubelet plugin's gRPC workers plus its
watches on a 1-core node, and a connection given back to a full pool is closed, so the next call
pays a TLS handshake), and the proxy the client chose from the environment when it was made is
pinned: the client's credential hook re-assigns the host before every request, which re-reads
the proxy variables from ``os.environ`` each time, though the connection pools it would matter to
were made, with their proxy, once, when the client was.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller import errors

Obj = dict[str, Any]

POOL_SIZE = 16
"""Connections kept per pool at least: the kubelet plugin's 8 gRPC workers, its watches and sweeps."""


class Rest:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        _send_once(api)
        _pin_proxy(api)
        self.requests = 0
        """Requests sent so far (for benchmarks and the "no write when nothing changed" rule)."""
        self.writes = 0

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
        response = self._send(method, path, body, query, content_type, timeout)
        try:
            payload = response.read()
            result: Obj = json.loads(payload) if payload else {}
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            # The body is read after the status: a server that hangs or dies mid-answer.
            raise errors.UnavailableError(f"{method} {path}: reading the answer: {exc}") from exc
        finally:
            response.response.release_conn()
        return result

    def get(self, path: str, **query: str) -> Obj:
        return self.request("GET", path, query=query or None)

    def watch(self, path: str, *, timeout_seconds: int, **query: str) -> Iterator[Obj]:
        """Watch events (``{"type": ..., "object": ...}``) until the server ends the watch."""
        query = {**query, "watch": "true", "timeoutSeconds": str(timeout_seconds)}
        response = self._send("GET", path, None, query, "application/json", timeout_seconds + 10)
        try:
            buffer = b""
            for chunk in response.response.stream(4096):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise errors.UnavailableError(f"watch of {path} broke off: {exc}") from exc
        finally:
            response.response.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        body: object,
        query: Mapping[str, str] | None,
        content_type: str,
        timeout: float,
    ) -> Any:
        self.requests += 1
        if method != "GET":
            self.writes += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*serialized, _request_timeout=timeout)
        except ApiException as exc:
            raise errors.for_status(
                exc.status or 0, f"{method} {path}: {exc.reason}", reason=str(exc.reason)
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.UnavailableError(f"{method} {path}: {exc}") from exc
        if response.status >= 400:
            raise _failure(method, path, response)
        return response


def _failure(method: str, path: str, response: Any) -> errors.ApiError:
    """The error of an error status, with the server's message if it can be read."""
    try:
        message = response.read().decode(errors="replace")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        message = f"(the answer broke off: {exc})"
    finally:
        response.response.release_conn()
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(message).get("message", message)
    return errors.for_status(response.status, f"{method} {path}: HTTP {response.status}: {message}")


def _send_once(api: client.ApiClient | None) -> None:
    """Switch off urllib3's retries on the client's connection pools (see the module's docstring),
    and let each pool keep at least `POOL_SIZE` connections."""
    pools = getattr(getattr(api, "rest_client", None), "pool_manager", None)
    if isinstance(pools, urllib3.PoolManager):
        pools.connection_pool_kw["retries"] = False
        size = pools.connection_pool_kw.get("maxsize")
        pools.connection_pool_kw["maxsize"] = max(size if isinstance(size, int) else 1, POOL_SIZE)
        pools.clear()  # pools made before now keep their own settings


def _pin_proxy(api: client.ApiClient | None) -> None:
    """Stop the configuration re-reading the proxy from the environment on each request.

    Assigning the proxy it holds (from the environment, the kubeconfig or None) marks it as set
    explicitly, so the host the credential hook assigns before each request no longer makes the
    configuration call ``urllib.request.getproxies()``. Nothing changes for the requests: the
    client read the proxy once, when it made its pool manager.
    """
    configuration = getattr(api, "configuration", None)
    if isinstance(configuration, client.Configuration):
        configuration.proxy = configuration.proxy
