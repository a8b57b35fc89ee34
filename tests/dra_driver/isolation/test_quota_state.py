"""`quotastate.read`: what a claim's state file says, as the quota library leaves it.

The states are made by the real library (``preload/``, plain build) in processes that allocate,
hold, are refused, fork and die, run as containers of the claim (`tests.preload.containers`).
Covers: a fresh file from Prepare (limits, GPU and MIG UUIDs, nothing charged, nobody live);
processes holding memory (bytes charged, live processes per device and per claim); refusals
counted; a killed process no longer counted even before the library reclaims its slot; a dead
parent whose forked child lives counted still (as the library counts it); a missing, short or
foreign file raising `StateError`.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from dra_driver.isolation import quotastate
from tests.preload import building, claims, containers, programs
from tests.preload.claims import MiB

GPU = claims.FAKE_UUIDS[0]
MIG = "MIG-cccccccc-1111-2222-3333-444444444444"

pytestmark = pytest.mark.skipif(not containers.available(), reason="needs root and unshare")


@pytest.fixture(scope="module")
def build() -> building.Build:
    return building.build(building.Flavour.PLAIN)


@pytest.fixture
def claim(tmp_path: pathlib.Path) -> claims.Claim:
    return claims.write(tmp_path / "claim-uid", {GPU: 100 * MiB, MIG: 50 * MiB})


def _session(build: building.Build, claim: claims.Claim, commands: str = "") -> programs.Session:
    env = programs.environment(build, config=claim.config, extra={"FAKE_GPU_UUIDS": f"{GPU},{MIG}"})
    return programs.Session(build, "harness_direct", commands, env=env)


def test_a_fresh_state_file_has_the_limits_and_nothing_else(claim: claims.Claim) -> None:
    assert quotastate.read(claim.state) == quotastate.ClaimState(
        devices=(
            quotastate.DeviceState(GPU, 100 * MiB, 0, 0, 0),
            quotastate.DeviceState(MIG, 50 * MiB, 0, 0, 0),
        ),
        live_processes=0,
    )


def test_live_processes_their_memory_and_refusals(
    build: building.Build, claim: claims.Claim
) -> None:
    with _session(build, claim) as first, _session(build, claim) as second:
        assert first.send("alloc a 60M").rc == 0
        assert second.send("alloc b 30M").rc == 0
        assert second.send("alloc c 30M").rc == 2  # refused for the limit
        assert second.send("dev 1").rc == 0
        assert second.send("alloc d 20M").rc == 0
        state = quotastate.read(claim.state)
        assert state.live_processes == 2
        gpu, mig = state.devices
        assert (gpu.charged_bytes, gpu.live_processes, gpu.refused) == (90 * MiB, 2, 1)
        assert (mig.charged_bytes, mig.live_processes, mig.refused) == (20 * MiB, 1, 0)
        assert first.finish() == 0
        assert second.finish() == 0
    after = quotastate.read(claim.state)
    assert after.live_processes == 0
    assert [(d.charged_bytes, d.refused) for d in after.devices] == [(0, 1), (0, 0)]


def test_a_killed_process_is_not_counted_before_its_slot_is_reclaimed(
    build: building.Build, claim: claims.Claim
) -> None:
    with _session(build, claim) as victim, _session(build, claim) as survivor:
        assert victim.send("alloc a 60M").rc == 0
        assert survivor.send("alloc b 10M").rc == 0
        victim.kill()
        state = quotastate.read(claim.state)
        assert (state.live_processes, state.devices[0].charged_bytes) == (1, 10 * MiB)
        assert survivor.finish() == 0


def test_a_dead_parent_whose_forked_child_lives_is_counted(
    build: building.Build, claim: claims.Claim
) -> None:
    with _session(build, claim, "alloc a 60M fork wait endfork") as parent:
        parent.until("child")
        parent.kill()
        state = quotastate.read(claim.state)
        assert (state.live_processes, state.devices[0].charged_bytes) == (1, 60 * MiB)
        parent.write("")  # the child exits
        with pytest.raises(EOFError):
            parent.line()
    assert quotastate.read(claim.state).live_processes == 0


def _truncated(path: pathlib.Path) -> None:
    os.truncate(path, 4096)


def _foreign(path: pathlib.Path) -> None:
    path.write_bytes(b"not a state file\n")


def _missing(path: pathlib.Path) -> None:
    path.unlink()


@pytest.mark.parametrize("breaks", [_truncated, _foreign, _missing], ids=lambda f: f.__name__[1:])
def test_a_file_that_is_no_state_file_raises(
    claim: claims.Claim, breaks: Callable[[pathlib.Path], None]
) -> None:
    breaks(claim.state)
    with pytest.raises(quotastate.StateError, match=str(claim.state)):
        quotastate.read(claim.state)
