"""The kubelet plugin process: how it starts, stops, and refuses to start.

Covers: ``python -m kubeletplugin`` exits with code 2 and a ``plugin.cannot_start`` line naming the
reason (no traceback) when it has no API server configuration (an empty environment: no
kubeconfig, not in a cluster), when its kubeconfig is missing or malformed, and when it finds no
GPUs; a bad flag exits with code 2 and argparse's usage. `run` works with the client and backend
it is given: it decides the mode, publishes the node's slices and serves the DRA socket through
them, and a stop ends it cleanly (sockets removed), with ``plugin.started`` and
``plugin.stopped``; a stop while the API server has not answered yet ends it too.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller import errors, rest
from dra_driver import backends
from kubeletplugin import __main__ as entry
from kubeletplugin import settings
from tests.controller import fakeapi

REPO = pathlib.Path(__file__).resolve().parents[2]
BARE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
"""Nothing of a cluster: no ``KUBERNETES_SERVICE_HOST``, no ``KUBECONFIG``."""
SLICES = "/apis/resource.k8s.io/v1/resourceslices"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def plugin(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubeletplugin", "--node-name=n1", *argv],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BARE_ENV,
        timeout=60,
    )


def assert_cannot_start(done: subprocess.CompletedProcess[str], reason: str, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "plugin.cannot_start" in done.stderr
    assert f"reason={reason}" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cannot_start_outside_a_cluster_without_kubeconfig(tmp_path: pathlib.Path) -> None:
    done = plugin("--gpus=fake:1xL4", f"--plugin-dir={tmp_path}")
    assert_cannot_start(done, "api_configuration", "no API server configuration")


def test_cannot_start_without_the_kubeconfig_file(tmp_path: pathlib.Path) -> None:
    done = plugin("--gpus=fake:1xL4", f"--plugin-dir={tmp_path}", "--kubeconfig=/nonexistent")
    assert_cannot_start(done, "api_configuration", "kubeconfig /nonexistent: no such file")


def test_cannot_start_with_a_malformed_kubeconfig(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("users: {")
    done = plugin("--gpus=fake:1xL4", f"--plugin-dir={tmp_path}", f"--kubeconfig={kubeconfig}")
    assert_cannot_start(done, "api_configuration", f"kubeconfig {kubeconfig}")


def _nvml_loads() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_nvml_loads(), reason="this machine has NVML: the plugin would find GPUs")
def test_cannot_start_without_gpus(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    done = plugin("--gpus=nvml", f"--plugin-dir={tmp_path}", f"--kubeconfig={kubeconfig}")
    assert_cannot_start(done, "no_gpus", "NVML")


def test_a_bad_flag_exits_with_code_2() -> None:
    done = plugin("--sweep-interval=0")
    assert done.returncode == 2
    assert "usage: gpu-dra-kubeletplugin" in done.stderr
    assert "--sweep-interval" in done.stderr


Runner = Callable[[threading.Event], None]


class ServedApi(fakeapi.FakeApi):
    """The in-memory API server with the ``resource.k8s.io`` group and a watch that stays open
    until the test ends."""

    def __init__(self, closed: threading.Event) -> None:
        super().__init__()
        self.objects["/apis/resource.k8s.io"] = {"versions": [{"version": "v1"}]}
        self._closed = closed

    def watch(self, path: str, *, timeout_seconds: int, **query: str) -> Iterator[rest.Obj]:
        self.calls.append(("WATCH", path))
        self._closed.wait(timeout_seconds)
        return iter(())


class UnreachableApi(fakeapi.FakeApi):
    def request(self, method: str, path: str, **kwargs: Any) -> rest.Obj:
        self.calls.append((method, path))
        raise errors.UnavailableError(f"{method} {path}: connection refused")


@pytest.fixture
def in_thread() -> Iterator[Callable[[Runner], threading.Event]]:
    """Start ``target(stop)`` in a thread and give ``stop``; the thread is stopped and joined
    after the test."""
    started: list[tuple[threading.Event, threading.Thread]] = []

    def start(target: Runner) -> threading.Event:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), name="plugin-run")
        started.append((stop, thread))
        thread.start()
        return stop

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(30)  # a guard against a hang: returns as soon as run does
        assert not thread.is_alive()


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20  # guards a hang only
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_run_publishes_and_serves_through_injected_clients(
    short_dir: pathlib.Path, in_thread: Callable[[Runner], threading.Event]
) -> None:
    config = settings.parse(
        [
            "--node-name=n1",
            "--gpus=fake:1xL4",
            "--mode=full",
            f"--plugin-dir={short_dir / 'plugin'}",
            f"--registry-dir={short_dir / 'registry'}",
            f"--cdi-dir={short_dir / 'cdi'}",
        ],
        environ={},
    )
    closed = threading.Event()
    api = ServedApi(closed)
    api.add("/api/v1/nodes", {"metadata": {"name": "n1"}})
    backend = backends.open_backend("fake:1xL4", node_name="n1", state_dir=config.node.plugin_dir)
    dra_socket = short_dir / "plugin" / "dra.sock"
    with capture_logs() as logs:
        stop = in_thread(lambda stop: entry.run(config, api=api, backend=backend, stop=stop))
        eventually(lambda: any(e["event"] == "plugin.started" for e in logs))
        eventually(lambda: any(path.startswith(f"{SLICES}/") for path in api.objects))
        assert dra_socket.is_socket()
        stop.set()
        closed.set()
        eventually(lambda: any(e["event"] == "plugin.stopped" for e in logs))
    backend.close()
    published = [obj for path, obj in api.objects.items() if path.startswith(f"{SLICES}/")]
    assert {obj["spec"]["nodeName"] for obj in published} == {"n1"}
    assert ("GET", "/apis/resource.k8s.io") in api.calls
    assert not dra_socket.exists()


def test_a_stop_before_the_server_answers_ends_run(
    short_dir: pathlib.Path, in_thread: Callable[[Runner], threading.Event]
) -> None:
    config = settings.parse(
        ["--node-name=n1", "--gpus=fake:1xL4", f"--plugin-dir={short_dir}"], environ={}
    )
    api = UnreachableApi()
    backend = backends.open_backend("fake:1xL4", node_name="n1", state_dir=short_dir)
    done = threading.Event()

    def run(stop: threading.Event) -> None:
        entry.run(config, api=api, backend=backend, stop=stop)
        done.set()

    with capture_logs() as logs:
        stop = in_thread(run)
        eventually(lambda: any(e["event"] == "server.unreachable" for e in logs))
        stop.set()
        eventually(done.is_set)
    backend.close()
    assert [e["event"] for e in logs][-1] == "plugin.stopped"
    assert api.calls[0] == ("GET", "/apis/resource.k8s.io")
