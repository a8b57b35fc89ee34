"""One limit for all the processes of a claim, kept in the claim's state file.

Covers: processes sharing the limit; 8 processes racing allocations never together passing it
(and never refused while room is left) over many trials; a SIGKILLed process's memory reclaimed;
a process killed while holding the claim's lock not blocking the others; a forked child counted in
a slot of its own and reclaimed after it exits; the state file's layout as documented (made 0666
by the plugin), and a file the plugin made beforehand used as is; a process of another (non-root)
user sharing the claim through the read-only config and the 0666 state file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def _session(build: building.Build, claim: claims.Claim, commands: str = "") -> programs.Session:
    env = programs.environment(build, config=claim.config)
    return programs.Session(build, "harness_direct", commands, env=env)


def test_processes_of_a_claim_share_its_limit(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with _session(build, claim) as first, _session(build, claim) as second:
        assert first.send("alloc a 60M").rc == 0
        assert second.send("alloc b 60M").rc == OOM
        assert second.send("alloc b 40M").rc == 0
        assert first.send("alloc c 1").rc == OOM
        assert first.send("free a").rc == 0
        assert second.send("alloc d 60M").rc == 0
        assert first.finish() == 0
        assert second.finish() == 0


def test_racing_processes_never_exceed_the_limit(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    limit, chunk, processes = 64 * MiB + 12345, 256 * 1024 + 7, 8
    claim = claims.write(claim_dir, {GPU0: limit})
    trials, deadline = 0, time.monotonic() + 15
    while trials < 20 and (trials < 3 or time.monotonic() < deadline):
        trials += 1
        sessions = [_session(build, claim, f"wait fill {chunk} wait") for _ in range(processes)]
        try:
            for session in sessions:
                session.until("wait")
            for session in sessions:  # let them all go at once
                session.write("")
            held = [session.until("fill").number("bytes") for session in sessions]
            for session in sessions:
                session.until("wait")
            # All still hold their memory: together within the limit, and nothing left unused
            # that another chunk would have fitted into.
            assert limit - chunk < sum(held) <= limit, (trials, held)
            state = statefile.read(claim.state)
            assert state.usage == (state.slot_total(),) == (sum(held),)
            for session in sessions:
                session.write("")
                assert session.finish() == 0
        finally:
            for session in sessions:
                session.__exit__(None, None, None)


def test_a_killed_processes_memory_is_reclaimed(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with _session(build, claim) as victim, _session(build, claim) as survivor:
        assert victim.send("alloc a 60M").rc == 0
        assert survivor.send("alloc b 60M").rc == OOM
        victim.kill()
        assert survivor.send("alloc b 60M").rc == 0
        assert survivor.send("info").number("free") == 40 * MiB
        assert survivor.finish() == 0


@pytest.mark.parametrize(
    ("waiting", "message"),
    [(True, "took over the claim's lock"), (False, "released the claim's lock left by")],
    ids=["a-waiting-process-takes-over", "a-new-process-in-its-slot-releases"],
)
def test_a_process_killed_holding_the_lock_does_not_block_the_claim(
    build: building.Build, claim_dir: pathlib.Path, waiting: bool, message: str
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with contextlib.ExitStack() as stack:
        victim = stack.enter_context(_session(build, claim))
        assert victim.send("alloc a 10M").rc == 0
        if waiting:  # attached before the victim dies, in a slot of its own
            survivor = stack.enter_context(_session(build, claim))
            assert survivor.send("info").rc == 0
        (slot,) = [s.index for s in statefile.read(claim.state).slots if s.used[0]]
        victim.kill()
        # As if it had died inside the critical section: the lock word names its slot.
        statefile.write_lock_word(claim.state, (7 << 12) | (slot + 1))
        if not waiting:  # attaches afterwards, into the victim's slot
            survivor = stack.enter_context(_session(build, claim))
        # A dead holder's lock never taken over would make this wait out the lock and fail closed.
        assert survivor.send("alloc b 100M").rc == 0
        assert survivor.finish() == 0
        assert message in survivor.stderr()
    assert statefile.read(claim.state).lock & 0x7FF == 0  # released again


def test_a_forked_child_is_counted_in_its_own_slot_and_reclaimed(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    with _session(
        build,
        claim,
        "alloc a 60M fork alloc c 60M alloc d 30M info endfork alloc e 40M info hold",
    ) as parent:
        lines = [parent.line() for _ in range(7)]
        assert [(line.command, line.values.get("rc")) for line in lines] == [
            ("alloc", "0"),  # parent: 60
            ("child", "2"),  # child: 60 + 60 > 100, the parent's memory counts
            ("child", "0"),  # child: 30
            ("child", "0"),  # child: info
            ("fork", None),
            ("alloc", "0"),  # parent: 40, after the exited child's 30 is reclaimed
            ("info", "0"),
        ]
        assert lines[3].number("free") == 10 * MiB
        assert lines[4].number("status") == 0
        assert lines[6].number("free") == 0
        parent.until("hold")
        used = [slot.used[0] for slot in statefile.read(claim.state).slots]
        assert sorted(used, reverse=True)[:2] == [100 * MiB, 0]


def test_the_state_file_holds_what_is_documented(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB, claims.FAKE_UUIDS[1]: 50 * MiB})
    with _session(build, claim) as holder:
        assert holder.send("alloc a 30M").rc == 0
        state = statefile.read(claim.state)
        assert (state.magic, state.version) == (statefile.MAGIC, statefile.VERSION)
        assert state.uuids == (
            statefile.uuid_bytes(GPU0),
            statefile.uuid_bytes(claims.FAKE_UUIDS[1]),
        )
        assert state.limits == (100 * MiB, 50 * MiB)
        assert state.usage == (30 * MiB, 0)
        assert (state.nslots, state.slot_size) == (statefile.DEFAULT_SLOTS, 64)
        assert [(slot.used, slot.pid) for slot in state.slots] == [
            ((30 * MiB, 0), holder.process.pid)
        ]
        assert stat.S_IMODE(claim.state.stat().st_mode) == 0o666
        assert claim.state.stat().st_size == statefile.HEADER_SIZE + 1024 * 64
        assert holder.finish() == 0
    assert sorted(path.name for path in claim.directory.iterdir()) == ["quota.conf", "state"]


def test_a_state_file_the_plugin_made_is_used(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    statefile.create(claim.state, [GPU0], [100 * MiB])
    with _session(build, claim) as first, _session(build, claim) as second:
        assert first.send("alloc a 60M").rc == 0
        assert second.send("alloc b 60M").rc == OOM
        assert statefile.read(claim.state).usage == (60 * MiB,)
        assert first.finish() == 0
        assert second.finish() == 0


@pytest.fixture
def shared_dir() -> Iterator[pathlib.Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a process as another user")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="gpuq-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def _reachable_by_everyone(build: building.Build, directory: pathlib.Path) -> building.Build:
    """A copy of the build another user can read (the clone itself may be private to root)."""
    copy = directory / "build"
    if not copy.exists():
        shutil.copytree(
            build.root, copy, ignore=shutil.ignore_patterns("obj", "asan", "fcntl-lock")
        )
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755)
    return dataclasses.replace(build, root=copy)


def _as_nobody(build: building.Build, claim: claims.Claim, commands: str) -> programs.Output:
    build = _reachable_by_everyone(build, claim.directory.parent)
    env = programs.environment(build, config=claim.config)
    nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]
    return programs.run(
        build,
        "/usr/bin/setpriv",
        commands,
        options=[*nobody, str(build.program("harness_direct"))],
        env=env,
    )


def test_a_process_of_another_user_shares_the_claim(
    build: building.Build, shared_dir: pathlib.Path
) -> None:
    claim = claims.write(shared_dir / "claim", {GPU0: 100 * MiB})
    (shared_dir / "claim").chmod(0o755)  # as the plugin leaves it: only root writes here
    with _session(build, claim) as root:
        assert root.send("alloc a 60M").rc == 0  # in the state file the plugin made, 0666
        output = _as_nobody(build, claim, "alloc b 60M alloc c 40M")
        assert output.returncode == 0, output
        assert output.rcs("alloc") == [OOM, 0]
        assert all("refused" in message for message in output.messages())  # not failed closed
        assert root.finish() == 0
