"""What a forked child keeps of its parent's claim, and what it does not.

A child forked after the parent used CUDA holds the parent's driver descriptors, and with them the
parent's device memory, until it execs or exits. The library errs on that (safe) side: the
parent's charge stays counted while such a child lives, even once the parent is dead. But the
child never passes for its parent: a parent killed while holding the claim's lock is taken over
at once, whatever its children do. (A child's own allocations: test_cross_process_accounting.)
"""

from __future__ import annotations

import pathlib
import time

import pytest

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def _parent_with_a_waiting_child(
    build: building.Build, claim: claims.Claim
) -> tuple[programs.Session, int]:
    """A parent holding 60M whose child waits on stdin; returns it and the parent's slot."""
    env = programs.environment(build, config=claim.config)
    parent = programs.Session(build, "harness_direct", "alloc a 60M fork wait endfork", env=env)
    assert parent.until("alloc").rc == 0
    parent.until("child")
    state = statefile.read(claim.state)
    (slot,) = [s.index for s in state.slots if s.pid == parent.process.pid]
    return parent, slot


def _end_the_child(parent: programs.Session) -> None:
    parent.write("")
    with pytest.raises(EOFError):
        parent.line()  # the pipe closes when the child exits


def test_a_dead_parents_charge_counts_until_its_forked_child_exits(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    parent, _ = _parent_with_a_waiting_child(build, claim)
    with parent, programs.Session(build, "harness_direct", env=env) as other:
        parent.kill()
        assert other.send("alloc b 60M").rc == OOM  # the child still holds the parent's memory
        assert other.send("alloc b 40M").rc == 0
        _end_the_child(parent)
        assert other.send("alloc c 60M").rc == 0  # reclaimed with the child
        assert other.finish() == 0


def test_a_parent_killed_holding_the_lock_is_taken_over_while_its_child_lives(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    parent, slot = _parent_with_a_waiting_child(build, claim)
    with parent, programs.Session(build, "harness_direct", env=env) as other:
        assert other.send("info").rc == 0
        parent.kill()
        # As if it had died inside the critical section: the lock word names its slot.
        statefile.write_lock_word(claim.state, (7 << 12) | (slot + 1))
        started = time.monotonic()
        assert other.send("alloc b 30M").rc == 0
        assert time.monotonic() - started < 1.5
        assert "took over the claim's lock" in other.stderr()
        _end_the_child(parent)
        assert other.finish() == 0
