"""A real control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Started in that order, each waited for (``/readyz`` or ``/healthz``), stopped in reverse. The same
feature-gate string goes to every component. `ControlPlane.apiserver_down` takes kube-apiserver
away for a block, hung (SIGSTOP) or killed (SIGKILL, then started again with the same flags), to
test what its clients do through an outage. Flags are those of ``e2e/cluster/FLAGS.md``;
``TaintNodesByCondition`` is disabled too, because no node-lifecycle controller runs to lift the
not-ready taint it puts on new nodes.
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Literal

from e2e.harness import credentials, kube, processes

CONTROLLERS = (
    "resourceclaim-controller",
    "device-taint-eviction-controller",
    "garbage-collector-controller",
    "namespace-controller",
    # Deployments become pods (the kubelet plugin's MPS daemon pods, mpsdeployments).
    "deployment-controller",
    "replicaset-controller",
)


class StartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ControlPlane:
    """One local cluster. Use as a context manager, or call `start` and `stop`."""

    def __init__(
        self,
        *,
        bin_dir: pathlib.Path,
        work_dir: pathlib.Path,
        feature_gates: str = "",
        runtime_config: str = "",
        progress: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.feature_gates = feature_gates
        self.runtime_config = runtime_config
        """kube-apiserver ``--runtime-config`` (e.g. to serve only older resource.k8s.io versions)."""
        self.progress = progress
        self.log_dir = work_dir / "logs"
        self.kubeconfig = work_dir / "admin.kubeconfig"
        self.ca_file = work_dir / "pki" / "apiserver.crt"
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.token = ""
        self.processes: list[processes.Process] = []

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def running(self) -> list[str]:
        return [p.name for p in self.processes if p.running()]

    @contextlib.contextmanager
    def apiserver_down(self, how: Literal["hang", "kill"]) -> Iterator[None]:
        """kube-apiserver out for the block: ``hang`` stops it (SIGSTOP: connections open, no
        answers) and resumes it after; ``kill`` kills it (SIGKILL: connections refused) and starts
        it again, with the same flags and port, waiting until it is ready."""
        (apiserver,) = (p for p in self.processes if p.name == "kube-apiserver")
        apiserver.send_signal(signal.SIGSTOP if how == "hang" else signal.SIGKILL)
        try:
            yield
        finally:
            if how == "hang":
                apiserver.send_signal(signal.SIGCONT)
            else:
                self.progress("starting kube-apiserver again")
                apiserver.start()
                self._wait(apiserver, f"{self.server}/readyz", tls=True, token=True)

    def client(self) -> kube.Kube:
        return kube.Kube(server=self.server, token=self.token, ca_file=str(self.ca_file))

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "pki").mkdir(exist_ok=True)
        self.token = credentials.write_token_file(self.work_dir / "tokens.csv")
        sa_key, sa_pub = credentials.write_service_account_keys(self.work_dir / "pki")
        gates = [f"--feature-gates={self.feature_gates}"] if self.feature_gates else []
        etcd_port, peer_port = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            "--name=default",
            f"--data-dir={self.work_dir / 'etcd'}",
            "--unsafe-no-fsync",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
        )
        self._wait(etcd, f"http://127.0.0.1:{etcd_port}/health", tls=False)
        apiserver = self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.work_dir / 'pki'}",
            f"--token-auth-file={self.work_dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--endpoint-reconciler-type=none",
            *gates,
            *([f"--runtime-config={self.runtime_config}"] if self.runtime_config else []),
        )
        self._wait(apiserver, f"{self.server}/readyz", tls=True, token=True)
        credentials.write_kubeconfig(
            self.kubeconfig, server=self.server, ca_file=self.ca_file, token=self.token
        )
        for name, extra in (
            (
                "kube-controller-manager",
                [
                    f"--controllers={','.join(CONTROLLERS)}",
                    f"--service-account-private-key-file={sa_key}",
                ],
            ),
            ("kube-scheduler", []),
        ):
            port = free_port()
            process = self._spawn(
                name,
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                *extra,
                *gates,
            )
            self._wait(process, f"https://127.0.0.1:{port}/healthz", tls=True, insecure=True)

    def _spawn(self, name: str, *args: str) -> processes.Process:
        self.progress(f"starting {name}")
        process = processes.Process(name, [str(self.bin_dir / name), *args], log_dir=self.log_dir)
        self.processes.append(process)
        process.start()
        return process

    def _wait(
        self,
        process: processes.Process,
        url: str,
        *,
        tls: bool,
        token: bool = False,
        insecure: bool = False,
        timeout: float = 60.0,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.running():
                raise StartError(
                    f"{process.name} exited with code {process.exit_code()}:\n{process.log_tail()}"
                )
            if _healthy(url, self._context(tls, insecure), self.token if token else None):
                return
            time.sleep(0.2)
        raise StartError(f"{process.name} not healthy after {timeout:.0f}s:\n{process.log_tail()}")

    def _context(self, tls: bool, insecure: bool) -> ssl.SSLContext | None:
        if not tls:
            return None
        if insecure:  # the scheduler's and controller-manager's own self-signed certs
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if not self.ca_file.exists():
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))


def _healthy(url: str, context: ssl.SSLContext | None, token: str | None) -> bool:
    if url.startswith("https") and context is None:
        return False
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with (
        contextlib.suppress(urllib.error.URLError, OSError),
        urllib.request.urlopen(request, timeout=2, context=context) as response,
    ):
        return bool(response.status == 200)
    return False


@contextlib.contextmanager
def running(
    *, bin_dir: pathlib.Path, work_dir: pathlib.Path, feature_gates: str = ""
) -> Iterator[ControlPlane]:
    with ControlPlane(bin_dir=bin_dir, work_dir=work_dir, feature_gates=feature_gates) as plane:
        yield plane
