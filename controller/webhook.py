"""The validating admission webhook's HTTPS server: ``POST /validate``, ``GET /healthz``.

A threaded `http.server` whose connections are wrapped in TLS one by one, each with the current
certificate: `Certificates` reloads the certificate and key files (the mounted Secret) when
either file's content changes, so a rotated certificate is served from the next connection on,
without a restart. A pair that does not load (a rotation caught half-written) keeps the previous one in use
and is tried again on the next connection. The TLS handshake happens in the connection's own
thread, so a slow client never holds up the accepting loop. Decisions are `admission.review`'s.

Every replica serves the webhook, leader or not. Responses close their connection (HTTP/1.0), so
`stop` leaves no connection thread behind.
"""

from __future__ import annotations

import http.server
import json
import pathlib
import socket
import ssl
import threading
from typing import Any

import structlog

from controller import admission

log = structlog.get_logger(__name__)

MAX_BODY = 4 << 20
"""Larger than any AdmissionReview the API server sends (its request limit is 3 MiB)."""


class Certificates:
    """The server's TLS context, rebuilt whenever the certificate or key file changes."""

    def __init__(self, cert: pathlib.Path, key: pathlib.Path) -> None:
        self._cert = cert
        self._key = key
        self._lock = threading.Lock()
        self._loaded = self._read()
        self._context = self._load()  # errors here are the caller's: no certificate, no server

    def context(self) -> ssl.SSLContext:
        """The context for a new connection (re-read first if the files changed)."""
        with self._lock:
            try:
                # The contents, not the timestamps: a few small reads per connection, and no
                # rotation goes unseen on a file system with coarse modification times.
                current = self._read()
                if current != self._loaded:
                    self._context = self._load()
                    self._loaded = current
                    log.info("webhook.certificate_reloaded", cert=str(self._cert))
            except (OSError, ssl.SSLError) as exc:
                log.warning("webhook.certificate_reload_failed", error=str(exc))
            return self._context

    def _read(self) -> tuple[bytes, bytes]:
        return self._cert.read_bytes(), self._key.read_bytes()

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._cert, self._key)
        return context


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # joined by server_close(): no handler outlives `stop`
    block_on_close = True

    def __init__(
        self, address: tuple[str, int], *, certificates: Certificates, driver: str
    ) -> None:
        if ":" in address[0]:  # an IPv6 address, "::" for all
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.certificates = certificates
        self.driver = driver

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        tls = self.certificates.context().wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        return tls, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("webhook.connection_failed", client=str(client_address), exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # seconds a client may stall a handshake or a read

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()

    def do_GET(self) -> None:
        if self.path in ("/healthz", "/readyz"):
            self._send(200, b"ok", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/validate":
            self._send(404, b"not found", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= MAX_BODY:
            self._send(413 if length else 400, b"bad request body size", "text/plain")
            return
        try:
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict) or not isinstance(body.get("request"), dict):
                raise ValueError("no request object")
        except ValueError as exc:
            self._send(400, f"not an AdmissionReview: {exc}".encode(), "text/plain")
            return
        answer = admission.review(body, driver=self.server.driver)
        _log_decision(body["request"], answer["response"])
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _send(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook.http", line=format % args)


def _log_decision(request: dict[str, Any], response: dict[str, Any]) -> None:
    fields = {
        "kind": (request.get("kind") or {}).get("kind"),
        "namespace": request.get("namespace"),
        "name": request.get("name") or "(generated)",
        "operation": request.get("operation"),
    }
    if response["allowed"]:
        log.debug("webhook.allowed", **fields)
    else:
        log.info("webhook.denied", reason=response["status"]["message"], **fields)


class Webhook:
    """The server on (`address`, `port`); port 0 picks a free one (see `port`)."""

    def __init__(self, *, address: str, port: int, certificates: Certificates, driver: str) -> None:
        self._server = _Server((address, port), certificates=certificates, driver=driver)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="webhook"
        )

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    def start(self) -> None:
        self._thread.start()
        log.info("webhook.serving", address=self._server.server_address[0], port=self.port)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
