"""A state file truncated or overwritten while processes use it fails them closed, never kills them.

Any process of a claim can write the claim's 0666 state file. Touching a mapping past the end of a
truncated file raises SIGBUS (MAP_POPULATE or mlock do not prevent that); the library catches it
for its own mapping and checks the magic on every charge. Covers, per damage (truncated to
nothing, to one byte, to the header, truncated and regrown, magic overwritten; each cuts below the
page of the process's own slot, since the kernel keeps a page that the end of the file is in): the
next allocation is refused, nothing is reported free, frees still reach the driver, one message
names the file and the damage, and the program ends normally. A SIGBUS that is not about the
state file still gets its default action.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
from collections.abc import Callable

import pytest

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2
SIZE = statefile.HEADER_SIZE + statefile.DEFAULT_SLOTS * 64


@dataclasses.dataclass(frozen=True)
class Damage:
    id: str
    apply: Callable[[pathlib.Path], None]
    problem: str


def _truncate(length: int) -> Callable[[pathlib.Path], None]:
    def apply(path: pathlib.Path) -> None:
        os.truncate(path, length)

    return apply


def _regrow(path: pathlib.Path) -> None:
    os.truncate(path, 0)
    os.truncate(path, SIZE)


def _overwrite_magic(path: pathlib.Path) -> None:
    with path.open("r+b") as file:
        file.write(b"SMASHED!")


DAMAGES = [
    Damage("truncated-to-nothing", _truncate(0), "truncated while in use (0 bytes"),
    Damage("truncated-to-the-header", _truncate(4096), "truncated while in use (4096 bytes"),
    Damage("truncated-to-one-byte", _truncate(1), "truncated while in use (1 bytes"),
    Damage("truncated-and-regrown", _regrow, "overwritten while in use"),
    Damage("magic-overwritten", _overwrite_magic, "overwritten while in use"),
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[damage.id for damage in DAMAGES])
def test_a_damaged_state_file_fails_the_process_closed_without_sigbus(
    build: building.Build, claim_dir: pathlib.Path, damage: Damage
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    with programs.Session(build, "harness_direct", env=env) as process:
        assert process.send("alloc a 10M").rc == 0
        damage.apply(claim.state)
        assert process.send("alloc b 10M").rc == OOM
        assert process.send("info").number("free") == 0
        assert process.send("free a").rc == 0
        assert process.send("alloc c 1").rc == OOM
        assert process.finish() == 0
        (message,) = [line for line in process.stderr().splitlines() if "gpuquota[" in line]
    assert f"{claim.state_inside}: {damage.problem}" in message
    assert "CUDA_ERROR_OUT_OF_MEMORY" in message


def test_another_sigbus_still_gets_its_default_action(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    with programs.Session(build, "harness_direct", env=env) as process:
        assert process.send("alloc a 10M").rc == 0  # the handler is installed
        process.process.send_signal(signal.SIGBUS)
        returncode = process.process.wait(timeout=20)
    if build.flavour is building.Flavour.PLAIN:
        assert returncode == -signal.SIGBUS
    else:  # AddressSanitizer's own SIGBUS handler came first and reports it
        assert returncode != 0
