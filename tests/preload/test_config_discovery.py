"""The library finds its claims under the claims root, whatever the environment says.

Covers: a process with an emptied environment held to its claim's limit; ``GPUQ_CONFIG`` pointing
at a permissive config changing nothing; a container holding two claims with shares, each GPU held
to its own claim's limit and counted in its own claim's state file; no claims root: inert. Failing
closed (every allocation on every device refused, nothing free, one message naming the file): the
root empty, an entry without a config, a stray file in the root, one valid and one broken claim,
two claims naming the same UUID (both files named).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import pytest

from tests.preload import building, claims, containers, programs, statefile
from tests.preload.claims import GiB, MiB

GPU0, GPU1 = claims.FAKE_UUIDS[:2]
OOM = 2
ROOT = str(containers.ROOT)
TWO_GPUS = f"{GPU0},{GPU1}"


def test_a_process_that_empties_its_environment_is_held_all_the_same(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    # As `env -i` leaves it: only what the loader needs (ld.so.preload in production).
    keep = [f"{key}={env[key]}" for key in ("LD_PRELOAD", "LD_LIBRARY_PATH", "ASAN_OPTIONS")]
    output = programs.run(
        build,
        "/usr/bin/env",
        "alloc a 60M alloc b 60M",
        options=["-i", *keep, str(build.program("harness_direct"))],
        env=env,
    )
    assert output.rcs("alloc") == [0, OOM]


def test_gpuq_config_pointing_at_a_permissive_config_changes_nothing(
    build: building.Build, tmp_path: pathlib.Path
) -> None:
    claim = claims.write(tmp_path / "claim", {GPU0: 100 * MiB})
    permissive = claims.write(tmp_path / "mine", {GPU0: 10 * GiB})
    permissive.rewrite(permissive.state_inside, str(permissive.state))  # usable from anywhere
    env = programs.environment(
        build, config=claim.config, extra={"GPUQ_CONFIG": str(permissive.config)}
    )
    output = programs.run(build, "harness_direct", "alloc a 60M alloc b 60M info", env=env)
    assert output.rcs("alloc") == [0, OOM]
    assert output.results("info")[0].number("total") == 100 * MiB
    assert statefile.read(permissive.state).high_water == 0


def test_each_gpu_is_held_to_the_limit_of_its_own_claim(
    build: building.Build, tmp_path: pathlib.Path
) -> None:
    first = claims.write(tmp_path / "claim-a", {GPU0: 100 * MiB})
    second = claims.write(tmp_path / "claim-b", {GPU1: 50 * MiB})
    env = programs.environment(
        build, claims=[first.directory, second.directory], extra={"FAKE_GPU_UUIDS": TWO_GPUS}
    )
    with programs.Session(build, "harness_direct", env=env) as process:
        for device, (fits, too_much, limit) in enumerate([(60, 60, 100), (40, 20, 50)]):
            process.send(f"dev {device}")
            assert process.send(f"alloc a{device} {fits}M").rc == 0
            assert process.send(f"alloc b{device} {too_much}M").rc == OOM
            info = process.send("info")
            assert (info.number("total"), info.number("free")) == (
                limit * MiB,
                (limit - fits) * MiB,
            )
        for claim, held in [(first, 60 * MiB), (second, 40 * MiB)]:
            state = statefile.read(claim.state)
            assert (state.usage, state.refused) == ((held,), (1,))
        assert process.finish() == 0


def test_without_a_claims_root_the_library_is_inert(build: building.Build) -> None:
    env = programs.environment(build, claims=None)
    output = programs.run(build, "harness_direct", "alloc a 8G info", env=env)
    assert output.rcs("alloc") == [0]
    assert output.results("info")[0].number("total") == 16 * GiB
    assert output.messages() == []


@dataclasses.dataclass(frozen=True)
class Layout:
    id: str
    claims: Callable[[pathlib.Path], tuple[list[pathlib.Path], str]]
    """Makes the claims root's entries under the directory; returns them and the file the
    message names (in the container)."""
    problem: str


def _empty(tmp_path: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    return [], ROOT


def _without_config(tmp_path: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    good = claims.write(tmp_path / "a", {GPU0: 100 * MiB})
    (tmp_path / "b").mkdir()
    return [good.directory, tmp_path / "b"], f"{ROOT}/b/quota.conf"


def _stray_file(tmp_path: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    good = claims.write(tmp_path / "b", {GPU0: 100 * MiB})
    (tmp_path / "a").write_text("")
    return [tmp_path / "a", good.directory], f"{ROOT}/a/quota.conf"


def _one_broken(tmp_path: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    good = claims.write(tmp_path / "a", {GPU0: 100 * MiB})
    bad = claims.write(tmp_path / "b", {GPU1: 100 * MiB})
    bad.rewrite("version=1", "version=7")
    return [good.directory, bad.directory], bad.config_inside


def _same_uuid(tmp_path: pathlib.Path) -> tuple[list[pathlib.Path], str]:
    first = claims.write(tmp_path / "a", {GPU0: 100 * MiB})
    second = claims.write(tmp_path / "b", {GPU1: 1 * GiB, GPU0: 10 * GiB})
    return [first.directory, second.directory], second.config_inside


LAYOUTS = [
    Layout("root-empty", _empty, "no claim directory in it"),
    Layout("entry-without-config", _without_config, "cannot open the quota config"),
    Layout("stray-file", _stray_file, "cannot open the quota config: Not a directory"),
    Layout("one-claim-broken", _one_broken, "line 1: unsupported version '7'"),
    Layout("uuid-in-two-claims", _same_uuid, f"{GPU0} is limited here and in {ROOT}/a/quota.conf"),
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.id for layout in LAYOUTS])
def test_a_claims_root_without_one_valid_config_per_device_fails_closed(
    build: building.Build, tmp_path: pathlib.Path, layout: Layout
) -> None:
    directories, named = layout.claims(tmp_path)
    env = programs.environment(build, claims=directories, extra={"FAKE_GPU_UUIDS": TWO_GPUS})
    output = programs.run(
        build, "harness_direct", "dev 0 alloc a 1M info dev 1 alloc b 1M info", env=env
    )
    assert output.returncode == 0
    assert output.rcs("alloc") == [OOM, OOM]
    assert [line.number("free") for line in output.results("info")] == [0, 0]
    (message,) = output.messages()
    assert f"{named}: " in message
    assert layout.problem in message
    assert "CUDA_ERROR_OUT_OF_MEMORY" in message
