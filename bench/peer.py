"""The peer of ``bench/prepare.py --peer``: the upstream DRA example driver's kubelet plugin.

kubernetes-sigs/dra-example-driver (`cmd/dra-example-kubeletplugin`, Go, built on
k8s.io/dynamic-resource-allocation/kubeletplugin), built from its Go module by
``hack/build-example-driver.sh`` (VERSION), runs beside our plugin against the same local
kube-apiserver, without a cluster pod: its flags stand in for the DaemonSet's environment. It
publishes one ResourceSlice for its own node (NODE, pool = node name, fake devices ``gpu-0`` …
``gpu-7``), serves the kubelet's DRA gRPC API (v1 and v1beta1) on
``<plugins dir>/<driver>/dra-<pod UID>.sock`` (the helper's socket name when rolling updates are
on, as the example's chart runs it), GETs each claim from the API server, and per call writes a CDI
spec per claim and its checkpoint (temp file, fsync, rename) under a file lock.

Its claims ask for the DeviceClass DRIVER and are allocated its ``gpu-0`` through the status
subresource, as ours are (``bench/prepare.py``'s ``Claims``).
"""

from __future__ import annotations

import pathlib
import subprocess
from typing import Any

VERSION = "v0.4.0"  # resource.k8s.io/v1 and the kubelet's DRA gRPC v1 (k8s.io libraries 0.36)
DRIVER = "gpu.example.com"  # the example's default for its gpu profile
NODE = "bench-peer-node"  # its own node: its slices do not collide with ours
POD_UID = "bench-peer-pod"
DEVICE = "gpu-0"
# client-go's defaults (5 per second, bursts of 10) would make every prepare after the tenth wait
# for the rate limiter (each prepare GETs its claim); our plugin has no client-side limit.
API_QPS = 10_000
BUILD_SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "hack" / "build-example-driver.sh"


class PeerError(Exception):
    """The peer could not be built."""


def build() -> pathlib.Path:
    """The peer's binary, built once per version into the cache (progress on our stderr)."""
    done = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines:
        raise PeerError(f"{BUILD_SCRIPT.name} failed (exit {done.returncode}); see above")
    return pathlib.Path(lines[-1])


def argv(binary: pathlib.Path, workdir: pathlib.Path, *, kubeconfig: pathlib.Path) -> list[str]:
    """The peer's command line, everything it makes under `workdir`."""
    return [
        str(binary),
        f"--node-name={NODE}",
        f"--driver-name={DRIVER}",
        f"--pod-uid={POD_UID}",
        f"--kubeconfig={kubeconfig}",
        f"--kube-api-qps={API_QPS}",
        f"--kube-api-burst={API_QPS}",
        f"--kubelet-plugins-directory-path={workdir / 'plugins'}",
        f"--kubelet-registrar-directory-path={workdir / 'registry'}",
        f"--cdi-root={workdir / 'cdi'}",
        "--num-devices=8",
        "--healthcheck-port=-1",  # no TCP listeners (the default too)
        "--metrics-port=-1",
    ]


def socket(workdir: pathlib.Path) -> pathlib.Path:
    """Where the kubeletplugin helper serves the DRA API for the flags of `argv`."""
    return workdir / "plugins" / DRIVER / f"dra-{POD_UID}.sock"


def device_class() -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": DRIVER},
        "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{DRIVER}'"}}]},
    }


def allocation() -> dict[str, Any]:
    """What the scheduler would write for a claim of one whole GPU of the peer."""
    result = {"request": "gpu", "driver": DRIVER, "pool": NODE, "device": DEVICE}
    selector = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [NODE]}]}
    return {
        "devices": {"results": [result], "config": []},
        "nodeSelector": {"nodeSelectorTerms": [selector]},
    }
