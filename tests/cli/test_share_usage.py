"""Shares' usage from the kubelet plugins' metrics (`cli.usage`).

Covers: the metric names are those the plugin exports (a rename there fails here); the real
collector's exposition parses into usage per (claim UID, GPU UUID); metrics served over HTTP on
127.0.0.1 are read; a URL that cannot be read becomes a note, not an error; bare ``host:port``
gets ``http://`` and ``/metrics``.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import exposition, registry

from cli import occupancy, usage
from kubeletplugin import sharemetrics

EXPOSITION = """\
# HELP gpu_dra_share_memory_limit_bytes memory limit of the claim on the GPU
# TYPE gpu_dra_share_memory_limit_bytes gauge
gpu_dra_share_memory_limit_bytes{namespace="default",claim="a",claim_uid="u1",device="gpu-2-shared",gpu_uuid="GPU-2"} 1.073741824e+10
gpu_dra_share_memory_limit_bytes{namespace="default",claim="b",claim_uid="u2",device="gpu-2-shared",gpu_uuid="GPU-2"} 1.073741824e+10
# HELP gpu_dra_share_memory_used_bytes device memory the claim's live processes hold
# TYPE gpu_dra_share_memory_used_bytes gauge
gpu_dra_share_memory_used_bytes{namespace="default",claim="a",claim_uid="u1",device="gpu-2-shared",gpu_uuid="GPU-2"} 3.221225472e+09
# HELP something_else other
# TYPE something_else gauge
something_else 1
"""


def test_the_names_are_the_plugins() -> None:
    exported = {m.name for m in sharemetrics.ShareCollector(list).collect()}
    assert {usage.LIMIT, usage.USED} <= exported


def test_an_exposition_parses_into_usage_per_claim_and_gpu() -> None:
    assert usage.parse(EXPOSITION) == {
        ("u1", "GPU-2"): occupancy.Usage(used_bytes=3 * 2**30, limit_bytes=10 * 2**30),
        ("u2", "GPU-2"): occupancy.Usage(used_bytes=0, limit_bytes=10 * 2**30),
    }


def test_the_plugins_own_exposition_parses() -> None:
    """What the plugin's collector really writes (no shared claims prepared: nothing to join)."""
    reg = registry.CollectorRegistry()
    reg.register(sharemetrics.ShareCollector(list))
    assert usage.parse(exposition.generate_latest(reg).decode()) == {}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = EXPOSITION.encode() if self.path == "/metrics" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, name="metrics-server")
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_metrics_are_read_over_http_and_bad_urls_become_notes(server: str) -> None:
    found, notes = usage.scrape(
        [server, f"http://{server}/nothing-here", "ftp://example.invalid/x"], timeout=5
    )
    assert found[("u1", "GPU-2")].used_bytes == 3 * 2**30
    assert len(notes) == 2
    assert "404" in notes[0]
    assert "only http and https" in notes[1]


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("10.0.0.1:8080", "http://10.0.0.1:8080/metrics"),
        ("http://h:1/", "http://h:1/metrics"),
        ("https://h:1/custom", "https://h:1/custom"),
    ],
)
def test_urls_are_completed(given: str, url: str) -> None:
    assert usage.normalized(given) == url
