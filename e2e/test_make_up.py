"""``make up`` gives a cluster to play with, and takes all of it away again.

Covers: the real ``make up`` (a subprocess, as a user starts it) prints the kubeconfig and the
commands to try; through that kubeconfig the fake node's ResourceSlices are published and the
controller's DeviceClasses exist; the printed ``export`` line gives a kubectl at the control
plane's version that applies an example of ``deploy/examples/``, whose claim the real scheduler
allocates and the fake kubelet prepares (the pod turns Running), and the printed occupancy map
commands (``gpu-dra``, with and without the plugin's metrics) name that pod; then Ctrl-C (SIGINT to the
terminal's process group) or SIGTERM (to make alone, as a supervisor sends it) stops the cluster
and leaves no process, mount or temporary directory behind.
"""

from __future__ import annotations

import os
import pathlib
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from typing import IO

import pytest

from e2e.harness import kube, nodeagents, objects, playground

pytestmark = pytest.mark.e2e

EXAMPLE = "full-gpu.yaml"  # a claim template and a pod using it
LAST_LINE = "kubectl delete -f"  # the instructions are complete once it is printed


def _read_until(stream: IO[bytes], marker: str, *, timeout: float, log: pathlib.Path) -> str:
    """What `stream` printed up to and including the line with `marker`."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in data or not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([stream], [], [], max(left, 0))
        if not ready:
            pytest.fail(f"make up printed no {marker!r} in {timeout:.0f}s:\n{log.read_text()}")
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            pytest.fail(f"make up exited before printing {marker!r}:\n{log.read_text()}")
        data += chunk
    return data.decode()


def _run(command: str, *, cwd: pathlib.Path) -> str:
    """Run a printed command line as a user would paste it (bash); its output."""
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    return done.stdout


def _start_time(pid: int) -> str | None:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _tree(root: int, work_dir: pathlib.Path) -> dict[tuple[int, str], str]:
    """(pid, start time) → command line of `root`, its descendants and anything naming `work_dir`
    (a daemon that left its parent)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {root}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    found |= {pid for pid in parents if str(work_dir) in _cmdline(pid)}
    found.discard(os.getpid())
    return {(pid, start): _cmdline(pid) for pid in found if (start := _start_time(pid)) is not None}


def _alive(processes: dict[tuple[int, str], str]) -> list[str]:
    return [
        f"{pid}: {cmdline}"
        for (pid, start), cmdline in processes.items()
        if _start_time(pid) == start and _alive_state(pid)
    ]


def _alive_state(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mounts_under(directory: pathlib.Path) -> list[str]:
    prefix = str(directory) + "/"
    lines = pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda make: os.killpg(make.pid, signal.SIGINT), id="ctrl-c"),
        pytest.param(lambda make: make.send_signal(signal.SIGTERM), id="sigterm-to-make"),
    ],
)
def test_make_up_serves_a_cluster_until_stopped_and_leaves_nothing(
    stop: Callable[[subprocess.Popen[bytes]], None], bin_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    log = tmp_path / "make-up.stderr"
    with (
        log.open("wb") as stderr,
        subprocess.Popen(
            ["make", "up"],
            cwd=nodeagents.REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, as in a terminal
        ) as make,
    ):
        assert make.stdout is not None
        try:
            printed = _read_until(make.stdout, LAST_LINE, timeout=600, log=log)
            (export,) = [line.strip() for line in printed.splitlines() if "export " in line]
            kubeconfig = pathlib.Path(re.search(r"KUBECONFIG=(\S+)", export)[1])  # type: ignore[index]
            work_dir = kubeconfig.parent
            assert f"removes {work_dir}" in printed
            assert 'gpu-dra --kubeconfig "$KUBECONFIG"' in printed
            assert f"kubectl apply -f {objects.EXAMPLES}/" in printed

            client = kube.Kube.from_kubeconfig(kubeconfig, scratch=tmp_path)
            slices = client.items(objects.SLICES)
            assert slices, "the fake node's plugin published no ResourceSlices"
            assert {s["spec"]["driver"] for s in slices} == {objects.DRIVER}
            for device_class in playground.DEVICE_CLASSES:
                assert client.exists(f"/apis/resource.k8s.io/v1/deviceclasses/{device_class}")

            _run(f"{export} && kubectl apply -f {objects.EXAMPLES / EXAMPLE}", cwd=tmp_path)
            pod = "gpu-pod"
            node = objects.wait_scheduled(client, "default", pod)
            (claim,) = kube.wait_for(
                lambda: list(objects.pod_claims(client, "default", pod).values()) or None,
                what="the pod's claim",
            )
            (result,) = objects.allocation(client, "default", claim)
            assert (result["driver"], result["pool"]) == (objects.DRIVER, node)
            kube.wait_for(
                lambda: (
                    client.get(f"/api/v1/namespaces/default/pods/{pod}")["status"].get("phase")
                    == "Running"
                ),
                what="the fake kubelet prepared the pod (Running)",
            )
            maps = [line.strip() for line in printed.splitlines() if "  gpu-dra " in line]
            assert len(maps) == 2, printed  # without and with the plugin's metrics
            for command in maps:  # the occupancy map names the pod
                drawn = _run(f"{export} && {command.split('#')[0]}", cwd=tmp_path)
                assert pod in drawn, drawn
            started = _tree(make.pid, work_dir)
            names = " ".join(started.values())
            for component in ("etcd", "kube-apiserver", "fake-kubelet", "kubeletplugin"):
                assert component in names, f"{component} not among {names}"
            assert "-m controller" in names
        except BaseException:
            os.killpg(make.pid, signal.SIGINT)  # stop the cluster before failing
            make.wait(timeout=60)
            raise
        stop(make)
        assert make.wait(timeout=60) != 0
    assert "interrupted: cluster stopped" in log.read_text()
    kube.wait_for(lambda: not _alive(started), what="every process of make up gone", timeout=15)
    assert not work_dir.exists()
    assert _mounts_under(work_dir) == []
