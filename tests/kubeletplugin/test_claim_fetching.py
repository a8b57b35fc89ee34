"""The real claim fetcher (`claimfetching.ClaimFetcher`) against a local HTTP server playing the API
server, through the official client's transport and the project's REST layer.

Covers: a 200 answer is the claim's JSON, read from the served ``resource.k8s.io`` version; a 404
is the claim's "does not exist (any more)" error; a 500 and a 503 are retriable
(`claimfetching.UnreachableError`, "the API server is unreachable"); a 403 is a claim error with
the HTTP status; a server that hangs past the timeout and a refused connection are retriable too,
within the timeout (urllib3's own retries are off, so a hung server costs one timeout, not four);
``exists`` tells gone (404, another UID) from "cannot tell now" (None); every claim read (by
``fetch`` or ``exists``) is shown to ``on_read`` (the pod names of the metrics). Every error is a
`claims.ClaimError`: nothing foreign escapes to fail the kubelet's whole batch.
"""

from __future__ import annotations

import gc
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from controller import rest
from dra_driver import claims
from kubeletplugin import claimfetching

CLAIM = {
    "apiVersion": "resource.k8s.io/v1",
    "kind": "ResourceClaim",
    "metadata": {"namespace": "ns", "name": "ok", "uid": "uid-ok"},
    "status": {"allocation": {"devices": {"results": []}}},
}


def _status(code: int, message: str) -> dict[str, object]:
    return {"kind": "Status", "status": "Failure", "code": code, "message": message}


class _ApiServer(http.server.BaseHTTPRequestHandler):
    """Answers by claim name: ``ok``, ``gone`` (404), ``broken`` (500), ``busy`` (503),
    ``secret`` (403), ``hang`` (no answer until released)."""

    protocol_version = "HTTP/1.1"
    timeout = 1  # an idle keep-alive connection ends, whoever still holds the client's end
    release = threading.Event()
    paths: list[str] = []  # noqa: RUF012 - shared by the handler threads on purpose

    def do_GET(self) -> None:
        self.paths.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name == "hang":
            self.release.wait(30)
            return
        code, body = {
            "ok": (200, CLAIM),
            "gone": (404, _status(404, 'resourceclaims "gone" not found')),
            "broken": (500, _status(500, "etcdserver: request timed out")),
            "busy": (503, _status(503, "the server is shutting down")),
            "secret": (403, _status(403, "forbidden: node cannot read claims")),
        }[name]
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _rest(port: int) -> Iterator[rest.Rest]:
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    with client.ApiClient(configuration) as api_client:
        yield rest.Rest(api_client)


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ApiServer)
    httpd.daemon_threads = False
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    _ApiServer.release.clear()
    _ApiServer.paths = []
    yield httpd
    # A raised error's traceback keeps the client's connection pool, and so its keep-alive
    # connection, until collected (urllib3 closes pools only then); the handler serving that
    # connection would wait for its next request.
    gc.collect()
    _ApiServer.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def fetcher(server: http.server.ThreadingHTTPServer) -> Iterator[claimfetching.ClaimFetcher]:
    for api in _rest(server.server_address[1]):
        yield claimfetching.ClaimFetcher(api, api_version="v1beta2")


def _ref(name: str, uid: str = "uid-ok") -> claims.ClaimRef:
    return claims.ClaimRef("ns", name, claims.ClaimUID(uid))


def test_a_claim_is_read_as_plain_json_in_the_served_version(
    fetcher: claimfetching.ClaimFetcher,
) -> None:
    assert fetcher.fetch(_ref("ok")) == CLAIM
    assert _ApiServer.paths == ["/apis/resource.k8s.io/v1beta2/namespaces/ns/resourceclaims/ok"]


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        pytest.param("gone", claims.ClaimError, r"claim ns/gone \(uid-ok\) does not exist \(any more\)", id="404-gone"),
        pytest.param("broken", claimfetching.UnreachableError, r"the API server is unreachable: .*HTTP 500: etcdserver", id="500-retriable"),
        pytest.param("busy", claimfetching.UnreachableError, r"the API server is unreachable: .*HTTP 503: the server is shutting down", id="503-retriable"),
        pytest.param("secret", claims.ClaimError, r"reading claim ns/secret \(uid-ok\) from the API server failed: GET .*: HTTP 403: forbidden", id="403-with-status"),
    ],
)  # fmt: skip
def test_each_error_status_fails_the_claim_with_what_to_expect(
    fetcher: claimfetching.ClaimFetcher, name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        fetcher.fetch(_ref(name))
    retriable = isinstance(raised.value, claimfetching.UnreachableError)
    assert retriable == (name in {"broken", "busy"})
    assert len(_ApiServer.paths) == 1, "sent once: no hidden retries"


def test_a_hung_server_is_retriable_after_one_timeout(
    fetcher: claimfetching.ClaimFetcher,
) -> None:
    started = time.monotonic()
    with pytest.raises(claimfetching.UnreachableError, match="the API server is unreachable"):
        fetcher.fetch(_ref("hang"), timeout=0.3)
    assert time.monotonic() - started < 5  # one timeout (0.3 s), not four of them
    assert len(_ApiServer.paths) == 1


def test_a_refused_connection_is_retriable() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        for api in _rest(sock.getsockname()[1]):
            fetcher = claimfetching.ClaimFetcher(api)
            with pytest.raises(claimfetching.UnreachableError, match=r"unreachable: .*refused"):
                fetcher.fetch(_ref("ok"))
            assert fetcher.exists(_ref("ok")) is None


@pytest.mark.parametrize(
    ("name", "uid", "expected"),
    [
        pytest.param("ok", "uid-ok", True, id="there"),
        pytest.param("ok", "uid-older", False, id="replaced-by-a-new-uid"),
        pytest.param("gone", "uid-ok", False, id="404-gone"),
        pytest.param("busy", "uid-ok", None, id="503-cannot-tell"),
        pytest.param("secret", "uid-ok", None, id="403-cannot-tell"),
    ],
)
def test_exists_tells_gone_from_cannot_tell(
    fetcher: claimfetching.ClaimFetcher, name: str, uid: str, expected: bool | None
) -> None:
    assert fetcher.exists(_ref(name, uid)) is expected


def test_every_claim_read_is_shown_to_on_read_for_fetch_and_exists_alike(
    server: http.server.ThreadingHTTPServer,
) -> None:
    seen: list[object] = []
    for api in _rest(server.server_address[1]):
        reader = claimfetching.ClaimFetcher(api, on_read=seen.append)
        reader.fetch(_ref("ok"))
        assert reader.exists(_ref("ok")) is True
        assert reader.exists(_ref("gone")) is False
    assert seen == [CLAIM, CLAIM]
