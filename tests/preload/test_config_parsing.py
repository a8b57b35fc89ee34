"""quota.conf is parsed strictly: whatever the library might misread fails closed.

One table, each case a config as the plugin writes it with one line broken (the plugin's own
renderer, `quotas.render`, makes the rest): every allocation is refused, and the one message names
the config (as the container sees it) and the line. Cases: UUIDs of unknown formats, misspelt
keys, blanks around '=' or at the end, a tab, CRLF, a NUL byte, duplicate keys and devices,
numbers that overflow or are no plain decimal, round_bytes=0. Comments and blank lines are fine.
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from tests.preload import building, claims, programs
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2
LIMIT = f"device.{GPU0}.memory_bytes={100 * MiB}"  # line 2 of what the plugin writes


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    old: str
    new: str
    line: int
    problem: str


def _limit(text: str) -> tuple[str, str]:
    return LIMIT, text


CASES = [
    Case(
        "uuid-too-short", *_limit(f"device.{GPU0[:-1]}.memory_bytes=1"), 2, "is no GPU or MIG UUID"
    ),
    Case("uuid-lowercase-prefix", *_limit(f"device.gpu-{GPU0[4:]}.memory_bytes=1"), 2, "is no GPU"),
    Case(
        "uuid-old-mig-format",
        *_limit("device.MIG-GPU-fa4e0000-0000-0000-0000-000000000000/1/0.memory_bytes=1"),
        2,
        "is no GPU or MIG UUID",
    ),
    Case("key-misspelt", *_limit(f"device.{GPU0}.memroy_bytes=1"), 2, "unknown key"),
    Case("top-key-misspelt", "version=1", "version=1\nversoin=1", 2, "unknown key 'versoin'"),
    Case("state-file-misspelt", "state_file=", "statefile=", 3, "unknown key 'statefile'"),
    Case("blank-before-equals", *_limit(f"device.{GPU0}.memory_bytes ={MiB}"), 2, "blank"),
    Case("blank-after-equals", *_limit(f"device.{GPU0}.memory_bytes= {MiB}"), 2, "blank"),
    Case("blank-at-the-end", "version=1", "version=1 ", 1, "blank (byte 0x20) at column 10"),
    Case("tab", "version=1", "version=\t1", 1, "blank (byte 0x09)"),
    Case("crlf", "version=1", "version=1\r", 1, "unexpected character (byte 0x0d)"),
    Case("nul-byte", "version=1", "version=1\0", 1, "NUL byte at column 10"),
    Case("version-twice", "version=1", "version=1\nversion=1", 2, "'version' is given twice"),
    Case(
        "device-twice",
        LIMIT,
        f"{LIMIT}\ndevice.{GPU0.upper()}.memory_bytes=1",  # the same UUID in capitals
        3,
        "is given twice (first on line 2)",
    ),
    Case("state-file-twice", "state_file=", "state_file=/x\nstate_file=", 4, "given twice"),
    Case(
        "number-overflows",
        *_limit(f"device.{GPU0}.memory_bytes=18446744073709551616"),
        2,
        "overflows 64 bits",
    ),
    Case("number-negative", *_limit(f"device.{GPU0}.memory_bytes=-1"), 2, "is not a byte count"),
    Case("number-hex", *_limit(f"device.{GPU0}.memory_bytes=0x10"), 2, "is not a byte count"),
    Case("number-exponent", *_limit(f"device.{GPU0}.memory_bytes=1e9"), 2, "not a byte count"),
    Case("number-empty", *_limit(f"device.{GPU0}.memory_bytes="), 2, "has no value"),
    Case("round-bytes-zero", "version=1", "version=1\nround_bytes=0", 2, "at least 1"),
    Case("no-equals", "version=1", "version=1\nversion", 2, "is not key=value"),
]


def _run(build: building.Build, claim: claims.Claim) -> programs.Output:
    env = programs.environment(build, config=claim.config)
    return programs.run(build, "harness_direct", "alloc a 1M info alloc b 1", env=env)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_config_with_a_broken_line_fails_closed_naming_the_line(
    build: building.Build, claim_dir: pathlib.Path, case: Case
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    text = claim.config.read_text()
    assert case.old in text
    claim.rewrite(case.old, case.new)
    output = _run(build, claim)
    assert output.returncode == 0
    assert output.rcs("alloc") == [OOM, OOM]
    (message,) = output.messages()
    assert f"{claim.config_inside}: line {case.line}: " in message
    assert case.problem in message


def test_comments_and_blank_lines_are_fine(build: building.Build, claim_dir: pathlib.Path) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    claim.rewrite("version=1\n", "# written by the plugin\n\nversion=1\n\n")
    output = _run(build, claim)
    assert output.rcs("alloc") == [0, 0]
    assert output.messages() == []
