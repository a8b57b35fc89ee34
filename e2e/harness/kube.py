"""A small JSON client for the local API server (urllib, token auth, verified TLS).

The scenarios speak plain JSON paths (``/apis/resource.k8s.io/v1/resourceslices``) so what they
send and read is exactly what the API server stores, with no client model in between.
"""

from __future__ import annotations

import base64
import json
import pathlib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

Obj = dict[str, Any]
_T = TypeVar("_T")


class KubeError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status = status
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")


class Kube:
    def __init__(
        self,
        *,
        server: str,
        token: str = "",
        ca_file: str,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self.server = server
        self._token = token
        self._context = ssl.create_default_context(cafile=ca_file)
        if cert_file is not None:
            self._context.load_cert_chain(cert_file, key_file)

    @classmethod
    def from_kubeconfig(cls, path: pathlib.Path, *, scratch: pathlib.Path) -> Kube:
        """A client for the current context of a kubeconfig (token or client certificate, e.g.
        kind's); embedded certificate data is written to files in `scratch`."""
        config = yaml.safe_load(path.read_text())
        context = next(
            c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
        )
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])

        def file(entry: dict[str, Any], key: str) -> str | None:
            if f"{key}-data" in entry:
                target = scratch / key
                target.write_bytes(base64.b64decode(entry[f"{key}-data"]))
                return str(target)
            value: str | None = entry.get(key)
            return value

        return cls(
            server=cluster["server"],
            token=user.get("token", ""),
            ca_file=file(cluster, "certificate-authority") or "",
            cert_file=file(user, "client-certificate"),
            key_file=file(user, "client-key"),
        )

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._context) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, method, path, exc.read().decode(errors="replace")) from None
        result: Obj = json.loads(payload) if payload else {}
        return result

    def get(self, path: str) -> Obj:
        return self.request("GET", path)

    def text(self, path: str) -> str:
        """A GET whose answer is not JSON (a pod's log)."""
        request = urllib.request.Request(self.server + path)
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._context) as response:
                return str(response.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, "GET", path, exc.read().decode(errors="replace")) from None

    def items(self, path: str) -> list[Obj]:
        items: list[Obj] = self.get(path).get("items") or []
        return items

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, patch: Obj) -> Obj:
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, path: str, *, grace_period: int | None = None) -> None:
        body = None if grace_period is None else {"gracePeriodSeconds": grace_period}
        try:
            self.request("DELETE", path, body)
        except KubeError as exc:
            if exc.status != 404:
                raise

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def missing(self, path: str) -> bool:
        return not self.exists(path)


def wait_for(
    check: Callable[[], _T | None], *, what: str, timeout: float = 60.0, interval: float = 0.2
) -> _T:
    """Poll `check` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
