"""Building the preload library and its test programs with ``make -C preload``.

Two builds: ``plain`` (what ships) and ``asan`` (AddressSanitizer + UndefinedBehaviorSanitizer,
``make -C preload asan``). Both go to ``$GPUQ_BUILD`` (default ``preload/build``, git-ignored). A
sanitized library loaded into a program needs the sanitizer runtime first in ``LD_PRELOAD``.
"""

from __future__ import annotations

import dataclasses
import enum
import fcntl
import functools
import os
import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]
PRELOAD = REPO / "preload"


class Flavour(enum.Enum):
    PLAIN = "plain"
    ASAN = "asan"


@dataclasses.dataclass(frozen=True)
class Build:
    flavour: Flavour
    root: pathlib.Path
    """Where ``make`` put this flavour's outputs."""
    sanitizer_runtime: str | None
    """libasan.so, which must come first in LD_PRELOAD (asan flavour only)."""

    @property
    def library(self) -> pathlib.Path:
        return self.root / "libgpuquota.so"

    @property
    def fakes(self) -> pathlib.Path:
        """The fake libcuda.so.1 and libnvidia-ml.so.1 (and the RTLD_NEXT probe libraries)."""
        return self.root / "fake"

    def program(self, name: str) -> pathlib.Path:
        return self.root / name

    def preload(self, *, library: pathlib.Path | None = None) -> str:
        """LD_PRELOAD for a program that should run under the library."""
        entries = [str(library or self.library)]
        if self.sanitizer_runtime is not None:
            entries.insert(0, self.sanitizer_runtime)
        return " ".join(entries)


def output_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("GPUQ_BUILD") or PRELOAD / "build")


def make(*targets: str) -> None:
    """Runs make (incremental: cheap when nothing changed); raises with its output on failure.

    Test runs in the same tree may overlap, so make runs under a lock on the output directory."""
    root = output_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".make.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["make", "-C", str(PRELOAD), "-s", f"-j{os.cpu_count() or 2}", *targets],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"make {' '.join(targets)} failed:\n{result.stdout}{result.stderr}")


@functools.cache
def _asan_runtime() -> str:
    found = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(pathlib.Path(found).resolve())


def build(flavour: Flavour) -> Build:
    root = output_root()
    if flavour is Flavour.PLAIN:
        make("all")
        return Build(flavour, root, None)
    make("asan")
    return Build(flavour, root / "asan", _asan_runtime())
