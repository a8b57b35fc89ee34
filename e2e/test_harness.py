"""The harness itself: built binaries are reused, and no process outlives the harness.

Covers: a second build is a cache hit that rebuilds nothing; stopping a control plane ends every
component; a harness killed with SIGKILL still takes its children with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import base64
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest
import yaml

from e2e.harness import binaries, controlplane, kube

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone once its parent reaps it.
    stat = pathlib.Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_a_second_build_reuses_the_cached_binaries(bin_dir: pathlib.Path) -> None:
    before = {path.name: path.stat().st_mtime_ns for path in bin_dir.iterdir()}
    result = subprocess.run(
        ["bash", str(binaries.BUILD_SCRIPT)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(bin_dir)
    assert "Building" not in result.stderr
    assert {path.name: path.stat().st_mtime_ns for path in bin_dir.iterdir()} == before


def test_stop_ends_every_component(bin_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    plane = controlplane.ControlPlane(bin_dir=bin_dir, work_dir=tmp_path)
    with plane:
        pids = [p.pid for p in plane.processes]
        assert len(pids) == 4
        client = kube.Kube(server=plane.server, token=plane.token, ca_file=str(plane.ca_file))
        assert client.get("/version")["gitVersion"] == "v1.37.2"
    assert plane.running() == []
    assert not [pid for pid in pids if pid is not None and _alive(pid)]


def test_children_die_with_a_killed_harness(tmp_path: pathlib.Path) -> None:
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from e2e.harness import processes
        p = processes.Process("sleeper", ["sleep", "300"], log_dir=pathlib.Path({str(tmp_path)!r}))
        p.start()
        print(p.pid, flush=True)
        time.sleep(300)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as harness:
        assert harness.stdout is not None
        child = int(harness.stdout.readline())
        assert _alive(child)
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    kube.wait_for(lambda: not _alive(child), what="orphaned child killed", timeout=10)


def test_a_client_from_a_kubeconfig_with_embedded_data(
    control_plane: controlplane.ControlPlane, tmp_path: pathlib.Path
) -> None:
    """As kind writes them: certificate data embedded, not paths (used by e2e/kind)."""
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = pathlib.Path(cluster.pop("certificate-authority")).read_bytes()
    cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    embedded = tmp_path / "kubeconfig"
    embedded.write_text(yaml.safe_dump(config))
    client = kube.Kube.from_kubeconfig(embedded, scratch=tmp_path)
    assert client.get("/version")["gitVersion"] == "v1.37.2"
    assert client.text("/healthz") == "ok"
