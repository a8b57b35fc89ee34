"""The control-plane binaries, built once per Kubernetes version into a cache outside the clone.

`e2e/cluster/build.sh` does the work and reports progress on stderr (which binary, elapsed time,
that it happens once); here we only run it and return the directory it prints.
"""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Sequence

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
    return build(BUILD_SCRIPT, NAMES)


def build(script: pathlib.Path, names: Sequence[str]) -> pathlib.Path:
    """Run a cached build script that prints its bin dir as the last line of stdout (progress on
    stderr); the dir, once it holds every one of `names`."""
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"{script} failed with exit code {result.returncode}")
    bin_dir = pathlib.Path(result.stdout.strip().splitlines()[-1])
    missing = [name for name in names if not (bin_dir / name).is_file()]
    if missing:
        raise BuildError(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir
