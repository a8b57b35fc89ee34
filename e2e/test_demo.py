"""The README's demo command works as a new user would run it, and leaves nothing behind.

Covers: ``python -m e2e.harness demo`` (what ``make demo`` runs) exits 0, prints the table with a
row for every example pod, each with an allocated device and what its container gets, and no
process of the demo outlives it; Ctrl-C in the middle of the demo stops it (exit 130) and leaves
no process and no temporary directory behind.
"""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import tempfile

import pytest

from dra_driver.backends.fake import mpscontrol
from e2e.harness import kube, nodeagents, objects

pytestmark = pytest.mark.e2e


def _demo_processes() -> set[str]:
    """Processes whose command line names a demo work dir (``gpu-dra-demo-*``)."""
    found = subprocess.run(
        ["pgrep", "-f", "gpu-dra-demo-"], capture_output=True, text=True, check=False
    )
    return set(found.stdout.split())


def _demo_daemons() -> set[int]:
    """The fake MPS daemons of demo runs (whose pipe dirs lie in a demo's work dir): other runs
    on the machine (tests, benchmarks) start and stop daemons of their own meanwhile."""
    demo = str(pathlib.Path(tempfile.gettempdir()) / "gpu-dra-demo-")
    return mpscontrol.running_daemons(pathlib.Path(demo))


def test_the_demo_prints_the_table_and_cleans_up() -> None:
    before = _demo_processes()
    daemons = _demo_daemons()
    done = subprocess.run(
        [sys.executable, "-m", "e2e.harness", "demo"],
        cwd=nodeagents.REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["POD", "CLAIM", "DEVICE", "ALLOCATED", "CONTAINER", "GETS"]
    pods = [doc["metadata"]["name"] for doc in objects.example_documents() if doc["kind"] == "Pod"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == sorted(pods)
    for row in rows.values():
        assert "uuid=" in row, row
        assert "prepare failed" not in row, row
    assert "mps daemon" in rows["mps-pod-a"]
    assert "timeslice=LONG" in rows["timesliced-pod-a"]
    # MPS daemons notice their directory is gone within a second of the demo's exit.
    kube.wait_for(lambda: _demo_processes() <= before, what="demo processes gone", timeout=10)
    kube.wait_for(lambda: _demo_daemons() <= daemons, what="demo MPS daemons gone", timeout=10)


def test_ctrl_c_during_the_demo_leaves_nothing_behind() -> None:
    before = _demo_processes()
    dirs = set(pathlib.Path(tempfile.gettempdir()).glob("gpu-dra-demo-*"))
    daemons = _demo_daemons()
    with subprocess.Popen(
        [sys.executable, "-m", "e2e.harness", "demo"],
        cwd=nodeagents.REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as demo:
        assert demo.stderr is not None
        for line in demo.stderr:  # interrupt once the node, the plugin and the pods are up
            if "waiting for the scheduler" in line:
                break
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 130
        assert "interrupted" in demo.stderr.read()
    kube.wait_for(lambda: _demo_processes() <= before, what="demo processes gone", timeout=15)
    kube.wait_for(lambda: _demo_daemons() <= daemons, what="demo MPS daemons gone", timeout=15)
    assert set(pathlib.Path(tempfile.gettempdir()).glob("gpu-dra-demo-*")) <= dirs
