"""The scenarios take the cluster as a parameter: run against another cluster, they pass.

Covers: with ``GPU_DRA_E2E_KUBECONFIG`` naming a cluster (here the session's own control plane,
standing in for kind), a nested pytest run of scenarios of ``e2e/`` uses that cluster through the
same fixtures (it starts no control plane of its own) and passes, and a scenario that needs the
local binaries (the fake kubelet) is skipped with the reason. This is what ``e2e/kind/run.sh``
relies on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from e2e.conftest import Cluster, local
from e2e.harness import clusters, nodeagents

pytestmark = pytest.mark.e2e


def test_scenarios_run_against_a_cluster_named_by_kubeconfig(control_plane: Cluster) -> None:
    plane = local(control_plane)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "e2e/test_full_gpus.py",
            "e2e/test_shared.py::test_a_share_that_asks_for_nothing_gets_the_default",
            "e2e/test_plugin.py::test_whole_gpu_mig_slice_and_share_are_prepared_and_unprepared",
        ],
        cwd=nodeagents.REPO,
        env={**os.environ, clusters.ENV: str(plane.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed, 1 skipped" in done.stdout, done.stdout[-3000:]
    assert "needs the local control plane" in done.stdout
