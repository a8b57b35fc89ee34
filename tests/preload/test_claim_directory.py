"""The library needs nothing of the claim directory but to read it, and of the state file but to
write its fixed bytes in place.

The plugin mounts the claim directory read-only and the state file (which it made at Prepare)
read-write on its own, so the file cannot be replaced or unlinked from a container; every test
here and elsewhere runs so. Covers: a missing state file fails closed and is not created even
where the directory is writable; processes that allocate, fork, exit and are killed leave the
directory as it was and the state file at its inode and size.
"""

from __future__ import annotations

import os
import pathlib

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def test_a_missing_state_file_fails_closed_and_is_not_created(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    claim.state.unlink()
    env = programs.environment(build, config=claim.config, writable=True)
    output = programs.run(build, "harness_direct", "alloc a 1M", env=env)
    assert output.rcs("alloc") == [OOM]
    (message,) = output.messages()
    assert f"{claim.state_inside}: cannot open (the plugin creates it at Prepare)" in message
    assert sorted(os.listdir(claim.directory)) == ["quota.conf"]


def test_processes_leave_the_directory_and_the_state_file_as_they_were(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    before = claim.state.stat()
    env = programs.environment(build, config=claim.config, writable=True)
    with programs.Session(build, "harness_direct", "alloc a 10M", env=env) as victim:
        victim.until("alloc")
        output = programs.run(
            build, "harness_direct", "alloc b 10M fork alloc c 10M endfork info", env=env
        )
        assert output.rcs("alloc") == [0]
        victim.kill()
    after = claim.state.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert after.st_size == statefile.HEADER_SIZE + statefile.DEFAULT_SLOTS * 64
    assert sorted(os.listdir(claim.directory)) == ["quota.conf", "state"]
