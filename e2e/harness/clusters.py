"""A cluster the scenarios run against: the local control plane, or one running elsewhere.

With ``GPU_DRA_E2E_KUBECONFIG`` set (``e2e/kind/run.sh`` sets it for its kind cluster), the
scenarios that only need an API server and a scheduler run against that cluster through the
same fixtures and helpers; scenarios that need the local binaries (the fake kubelet, a second
control plane with other feature gates) are skipped there.
"""

from __future__ import annotations

import os
import pathlib

from e2e.harness import kube, processes

ENV = "GPU_DRA_E2E_KUBECONFIG"


def external_kubeconfig() -> pathlib.Path | None:
    value = os.environ.get(ENV)
    return pathlib.Path(value) if value else None


class ExternalCluster:
    """A cluster reached through its kubeconfig; nothing of it runs here."""

    def __init__(self, kubeconfig: pathlib.Path, *, work_dir: pathlib.Path) -> None:
        self.kubeconfig = kubeconfig
        self.work_dir = work_dir
        self.processes: list[processes.Process] = []
        self._client = kube.Kube.from_kubeconfig(kubeconfig, scratch=work_dir)

    def client(self) -> kube.Kube:
        return self._client

    def running(self) -> list[str]:
        return []
