"""Running the probe on this host against the fake libcuda (``preload/testing``), as a container
would run it: a clean environment, the fake GPUs described by ``FAKE_GPU_*``, and optionally the
quota library with a claim directory written by the plugin's own writer (`tests.preload.claims`),
mounted where the library finds it (a private mount namespace, `tests.preload.containers`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
from collections.abc import Mapping, Sequence

import pytest

from e2e import probe
from tests.preload import building, programs

UUIDS = ("GPU-11111111-2222-3333-4444-555555555555", "GPU-66666666-7777-8888-9999-aaaaaaaaaaaa")
GPU_MEMORY = 24 << 30


@dataclasses.dataclass(frozen=True)
class Prober:
    program: pathlib.Path
    build: building.Build
    """The quota library and the fake driver libraries (plain build)."""

    def environment(
        self,
        *,
        config: pathlib.Path | None = None,
        preload: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> programs.Environment:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LD_LIBRARY_PATH": str(self.build.fakes),
            "FAKE_GPU_UUIDS": ",".join(UUIDS),
            "FAKE_GPU_MEM_BYTES": str(GPU_MEMORY),
        }
        if preload:
            env["LD_PRELOAD"] = self.build.preload()
        claims = None if config is None else (config.parent,)
        return programs.Environment(env | dict(extra or {}), claims=claims)

    def command(self, *args: str, env: Mapping[str, str], prefix: Sequence[str] = ()) -> list[str]:
        """The probe with `args`, in the container `env` describes."""
        return programs.command([*prefix, str(self.program), *args], env)

    def run(
        self, *args: str, env: Mapping[str, str], prefix: Sequence[str] = ()
    ) -> tuple[probe.Report, subprocess.CompletedProcess[str]]:
        done = subprocess.run(
            self.command(*args, env=env, prefix=prefix),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return probe.first_report(done.stdout), done


@pytest.fixture(scope="session")
def prober() -> Prober:
    return Prober(probe.build(), building.build(building.Flavour.PLAIN))
