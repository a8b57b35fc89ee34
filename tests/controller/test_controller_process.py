"""The cluster controller process: how it starts, stops, and refuses to start.

Covers: ``python -m controller`` exits with code 2 and a ``controller.cannot_start`` line naming
the reason when it has no API server configuration (an empty environment: no kubeconfig, not in
a cluster), a kubeconfig that is missing or malformed, or an unreadable webhook certificate; a bad
flag exits with code 2 and argparse's usage. `run` works with the client it is given: a replica
that finds the Lease held by another follows (it asked the injected client for that Lease and
started no duty), and a stop ends it cleanly, with ``controller.started`` and
``controller.stopped``.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest
from structlog.testing import capture_logs

from controller import __main__ as entry
from controller import leases, settings
from tests.controller import fakeapi

REPO = pathlib.Path(__file__).resolve().parents[2]
BARE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
"""Nothing of a cluster: no ``KUBERNETES_SERVICE_HOST``, no ``KUBECONFIG``."""


def controller(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *argv],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=BARE_ENV,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("argv", "reason", "message"),
    [
        pytest.param([], "api_configuration", "no API server configuration", id="not-in-cluster"),
        pytest.param(
            ["--kubeconfig=/nonexistent.kubeconfig"],
            "api_configuration",
            "kubeconfig /nonexistent.kubeconfig: no such file",
            id="no-kubeconfig-file",
        ),
        pytest.param(
            ["--webhook-cert=/nonexistent.crt", "--webhook-key=/nonexistent.key"],
            "certificate",
            "nonexistent.crt",
            id="no-certificate",
        ),
    ],
)
def test_cannot_start(argv: list[str], reason: str, message: str) -> None:
    done = controller(*argv)
    assert done.returncode == 2, done.stderr
    assert "controller.cannot_start" in done.stderr
    assert f"reason={reason}" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cannot_start_with_a_malformed_kubeconfig(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [")
    done = controller(f"--kubeconfig={kubeconfig}")
    assert done.returncode == 2, done.stderr
    assert "controller.cannot_start" in done.stderr
    assert f"kubeconfig {kubeconfig}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_flag_exits_with_code_2() -> None:
    done = controller("--gc-interval=0")
    assert done.returncode == 2
    assert "usage: gpu-dra-controller" in done.stderr
    assert "--gc-interval" in done.stderr


def test_run_follows_through_the_injected_client() -> None:
    api = fakeapi.FakeApi()
    config = settings.parse(["--namespace=gpu-system", "--lease-name=ctl"], environ={})
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/gpu-system/leases/ctl"
    now = leases.micro_time(datetime.datetime.now(datetime.UTC))
    api.add(
        lease_path.rsplit("/", 1)[0],
        {
            "metadata": {"name": "ctl"},
            "spec": {
                "holderIdentity": "other",
                "leaseDurationSeconds": 3600,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        },
    )
    stop = threading.Event()
    with capture_logs() as logs:
        running = threading.Thread(
            target=entry.run,
            kwargs={"config": config, "api": api, "certificates": None, "stop": stop},
        )
        running.start()
        try:
            deadline = time.monotonic() + 10  # guards a hang only
            while not any(entry["event"] == "leader.observed" for entry in logs):
                assert time.monotonic() < deadline, api.calls
                time.sleep(0.01)
        finally:
            stop.set()
            running.join(10)
    assert not running.is_alive()
    events = [entry["event"] for entry in logs]
    assert events[events.index("controller.started") :][-1] == "controller.stopped"
    assert next(e for e in logs if e["event"] == "leader.observed")["holder"] == "other"
    assert ("GET", lease_path) in api.calls
    assert all("resourceslices" not in path for _, path in api.calls), "a follower ran duties"
    assert api.objects[lease_path]["spec"]["holderIdentity"] == "other"
