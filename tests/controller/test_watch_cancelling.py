"""A watch is cut off at once by `cancel`, through the official client against a local HTTP server.

Covers: events stream in as the server writes them (one JSON object per line); `cancel` from
another thread ends the iteration while the server still holds the response open (it lets go only
when the test is over, so nothing but `cancel` can end the watch: no timing is measured);
a watch started after `cancel` yields nothing; an error status is translated (410 is refused
for good, not retried as if the server were busy).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from controller import errors, rest, watching


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def do_GET(self) -> None:
        if "resourceVersion=gone" in self.path:
            body = json.dumps({"kind": "Status", "code": 410, "message": "too old"}).encode()
            self.send_response(410)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        event = json.dumps({"type": "DELETED", "object": {"metadata": {"name": "n1"}}}) + "\n"
        self.wfile.write(f"{len(event):x}\r\n{event}\r\n".encode())
        self.wfile.flush()
        self.release.wait()  # hold the watch open until the test ends, as a quiet API server does
        self.close_connection = True
        with contextlib.suppress(OSError):  # the reader cancelled: nobody is there any more
            self.wfile.write(b"0\r\n\r\n")  # else end it, so that a reader still in it returns

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[rest.Rest]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    _Handler.release.clear()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    with client.ApiClient(configuration) as api_client:
        yield rest.Rest(api_client)
    _Handler.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_cancel_ends_a_quiet_watch_at_once(api: rest.Rest) -> None:
    watch = watching.Watch(api, "/api/v1/nodes")
    seen: list[str] = []
    first = threading.Event()

    def consume() -> None:
        for event in watch.events("1"):
            seen.append(event["type"])
            first.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(10)
    watch.cancel()
    reader.join(10)  # a guard against a hang: the server never ends this response by itself
    assert not reader.is_alive()
    assert seen == ["DELETED"]
    assert list(watch.events("1")) == []  # cancelled for good


def test_error_status_is_translated(api: rest.Rest) -> None:
    with pytest.raises(errors.RejectedError, match="HTTP 410"):
        list(watching.Watch(api, "/api/v1/nodes").events("gone"))
