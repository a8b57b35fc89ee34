"""Running ``harness_lifetimes`` (``preload/testing/harness_lifetimes.c``) under the library and
reading what the claim is charged beside what the fake driver holds."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from tests.preload import building, claims, programs, statefile

PROGRAM = "harness_lifetimes"


def environment(
    build: building.Build, claim: claims.Claim, *, extra: Mapping[str, str] | None = None
) -> Mapping[str, str]:
    return programs.environment(build, config=claim.config, extra=extra)


def run(
    build: building.Build,
    claim: claims.Claim,
    commands: str,
    *,
    extra: Mapping[str, str] | None = None,
) -> programs.Output:
    output = programs.run(build, PROGRAM, commands, env=environment(build, claim, extra=extra))
    assert output.returncode == 0, output
    return output


def session(
    build: building.Build, claim: claims.Claim, *, extra: Mapping[str, str] | None = None
) -> programs.Session:
    return programs.Session(build, PROGRAM, env=environment(build, claim, extra=extra))


def charged(state: pathlib.Path, dev: int = 0) -> int:
    """What the claim is charged on its device `dev` (the live processes' slots)."""
    return statefile.read(state).slot_total(dev)


def held(program: programs.Session, device: int = 0) -> int:
    """What the fake driver holds on CUDA device `device`, in `program`'s process."""
    return program.send(f"held {device}").number("bytes")


def succeed(program: programs.Session, *commands: str) -> None:
    """Send `commands` in order; each must succeed (rc 0), or the failing one is named."""
    for command in commands:
        line = program.send(command)
        if line.rc != 0:
            raise AssertionError(f"{command!r} answered rc={line.rc}: {line}")
