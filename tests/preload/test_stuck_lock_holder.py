"""A holder of the claim's lock that lives but never lets go (SIGSTOP) does not block the claim.

Covers: another process's allocation fails closed after the bounded wait (GPUQ_LOCK_TIMEOUT_MS,
2 s), with one message naming the holder's pid; while the same holder stays stuck, later
allocations and memory reports fail at once instead of waiting again; nothing is counted as
refused for the limit; once the holder lets go, allocations succeed again.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2
TIMEOUT_S = 2.0


def _timed(session: programs.Session, command: str) -> tuple[programs.Line, float]:
    started = time.monotonic()
    line = session.send(command)
    return line, time.monotonic() - started


def test_a_stopped_lock_holder_fails_allocations_closed_after_a_bounded_wait(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    with (
        programs.Session(build, "harness_direct", env=env) as holder,
        programs.Session(build, "harness_direct", env=env) as waiter,
    ):
        assert holder.send("alloc a 10M").rc == 0
        assert waiter.send("info").rc == 0
        (slot,) = [
            s.index for s in statefile.read(claim.state).slots if s.pid == holder.process.pid
        ]
        os.kill(holder.process.pid, signal.SIGSTOP)
        try:
            # As if it had been stopped inside the critical section: the lock word names its slot.
            statefile.write_lock_word(claim.state, (7 << 12) | (slot + 1))
            line, waited = _timed(waiter, "alloc b 10M")
            assert line.rc == OOM
            assert TIMEOUT_S <= waited < TIMEOUT_S + 3
            line, waited = _timed(waiter, "alloc c 10M")
            assert (line.rc, waited < 0.5) == (OOM, True)
            line, waited = _timed(waiter, "info")
            assert (line.number("free"), waited < 0.5) == (0, True)
            statefile.write_lock_word(claim.state, 0)  # it lets go
        finally:
            os.kill(holder.process.pid, signal.SIGCONT)
        assert waiter.send("alloc d 10M").rc == 0
        assert statefile.read(claim.state).refused == (0,)
        assert waiter.finish() == 0
        assert holder.finish() == 0
        (message,) = [line for line in waiter.stderr().splitlines() if "gpuquota[" in line]
    assert f"held by process slot {slot} (pid {holder.process.pid} " in message
    assert "has not let go for 2000 ms" in message
