"""The control-plane binaries, built once per Kubernetes version into a cache outside the clone.

`e2e/cluster/build.sh` does the work and reports progress on stderr (which binary, elapsed time,
that it happens once); here we only run it and return the directory it prints.
"""

from __future__ import annotations

import pathlib
import subprocess

BUILD_SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "cluster" / "build.sh"
NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    "fake-kubelet",
    "cdi-check",
)


class BuildError(RuntimeError):
    """The binaries could not be built; the message carries the build's last output."""


def ensure_built() -> pathlib.Path:
    """Build the binaries unless cached; return their directory."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    bin_dir = pathlib.Path(result.stdout.strip().splitlines()[-1])
    missing = [name for name in NAMES if not (bin_dir / name).is_file()]
    if missing:
        raise BuildError(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir
