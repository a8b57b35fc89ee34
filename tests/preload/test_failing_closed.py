"""A missing or broken config or state file fails closed, never open and never with a crash.

Covers, per problem: every allocation returns CUDA_ERROR_OUT_OF_MEMORY, cuMemGetInfo_v2 reports
nothing free, exactly one message on stderr names the file (as the container sees it) and the
problem, and the program runs to its end. Problems: the config missing, unreadable, of another
version, malformed, with a bad number or UUID, without state_file; the state file with bad magic,
another version, truncated, longer than its layout, made for other devices or limits, missing
(the library creates none), or named in a directory that does not exist. (Strict parsing has its
own table: test_config_parsing.py.)
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import pytest

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0, GPU1 = claims.FAKE_UUIDS[:2]
OOM = 2


@dataclasses.dataclass(frozen=True)
class Breakage:
    id: str
    breaks: Callable[[claims.Claim], str]
    """Breaks the claim; returns the file the message must name (its path in the container)."""
    problem: str


def _rewrite_config(claim: claims.Claim, old: str, new: str) -> str:
    claim.rewrite(old, new)
    return claim.config_inside


def _missing_config(claim: claims.Claim) -> str:
    claim.config.unlink()
    return claim.config_inside


def _config_is_a_directory(claim: claims.Claim) -> str:
    claim.config.unlink()
    claim.config.mkdir()
    return claim.config_inside


def _state_made(
    uuids: list[str], limits: list[int], patch: Callable[[bytearray], None]
) -> Callable[[claims.Claim], str]:
    def breaks(claim: claims.Claim) -> str:
        statefile.create(claim.state, uuids, limits)
        data = bytearray(claim.state.read_bytes())
        patch(data)
        claim.state.write_bytes(bytes(data))
        return claim.state_inside

    return breaks


def _state_missing(claim: claims.Claim) -> str:
    claim.state.unlink()
    return claim.state_inside


def _state_dir_missing(claim: claims.Claim) -> str:
    gone = f"{pathlib.PurePosixPath(claim.state_inside).parent}/gone/state"
    _rewrite_config(claim, f"state_file={claim.state_inside}", f"state_file={gone}")
    return gone


def _set(offset: int, value: bytes) -> Callable[[bytearray], None]:
    def patch(data: bytearray) -> None:
        data[offset : offset + len(value)] = value

    return patch


def _truncate(data: bytearray) -> None:
    del data[8192:]


def _lengthen(data: bytearray) -> None:
    data += bytes(4096)


BREAKAGES = [
    Breakage("config-missing", _missing_config, "cannot open the quota config"),
    Breakage("config-unreadable", _config_is_a_directory, "cannot read the quota config"),
    Breakage(
        "config-version",
        lambda c: _rewrite_config(c, "version=1", "version=2"),
        "unsupported version '2'",
    ),
    Breakage(
        "config-malformed",
        lambda c: _rewrite_config(c, "version=1", "version=1\nnonsense"),
        "is not key=value",
    ),
    Breakage(
        "config-bad-number",
        lambda c: _rewrite_config(c, f"={100 * MiB}", "=lots"),
        "is not a byte count",
    ),
    Breakage(
        "config-bad-uuid", lambda c: _rewrite_config(c, GPU0, "GPU-0"), "is no GPU or MIG UUID"
    ),
    Breakage(
        "config-no-state-file",
        lambda c: _rewrite_config(c, f"state_file={c.state_inside}\n", ""),
        "no 'state_file=' line",
    ),
    Breakage(
        "state-bad-magic", _state_made([GPU0], [100 * MiB], _set(0, b"NOTSTATE")), "bad magic"
    ),
    Breakage(
        "state-bad-version",
        _state_made([GPU0], [100 * MiB], _set(8, b"\x09\0\0\0")),
        "unsupported state file version 9",
    ),
    Breakage("state-truncated", _state_made([GPU0], [100 * MiB], _truncate), "truncated"),
    Breakage(
        "state-longer", _state_made([GPU0], [100 * MiB], _lengthen), "wrong size: 73728 bytes"
    ),
    Breakage("state-missing", _state_missing, "(the plugin creates it at Prepare)"),
    Breakage(
        "state-other-devices",
        _state_made([GPU1], [100 * MiB], lambda data: None),
        "made for other devices",
    ),
    Breakage(
        "state-other-limit",
        _state_made([GPU0], [200 * MiB], lambda data: None),
        f"limit of {GPU0} is {200 * MiB}",
    ),
    Breakage("state-directory-missing", _state_dir_missing, "cannot open"),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.id for b in BREAKAGES])
def test_allocations_fail_closed_with_one_message(
    build: building.Build, claim_dir: pathlib.Path, breakage: Breakage
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    named = breakage.breaks(claim)
    env = programs.environment(build, config=claim.config)
    output = programs.run(
        build, "harness_direct", "alloc a 1M async b 1M vmm c 1M info alloc d 1", env=env
    )
    assert output.returncode == 0
    assert output.rcs("alloc") == [OOM, OOM]
    assert output.rcs("async") == [OOM]
    assert output.rcs("vmm") == [OOM]
    assert output.results("info")[0].number("free") == 0
    (message,) = output.messages()
    assert f"{named}: " in message
    assert breakage.problem in message
    assert "CUDA_ERROR_OUT_OF_MEMORY" in message
