"""The limit itself, in one process.

Covers: CUDA_ERROR_OUT_OF_MEMORY (2) past the limit and freeing restoring room, for every
allocation API (cuMemAlloc_v2, cuMemAllocManaged, cuMemAllocAsync, cuMemAllocFromPoolAsync,
cuMemCreate on a device); cuMemAllocPitch_v2 charged the pitch the driver returned; arrays charged
an upper estimate; a failing driver allocation not charged; unknown and double frees passed
through with the driver's result and not counted twice; devices without a limit untouched;
context_reserve_bytes and round_bytes; requests too large to count refused.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.preload import building, claims, programs
from tests.preload.claims import GiB, MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2


def _run(
    build: building.Build,
    claim: claims.Claim,
    *commands: str,
    extra: dict[str, str] | None = None,
) -> programs.Output:
    env = programs.environment(build, config=claim.config, extra=extra)
    output = programs.run(build, "harness_direct", " ".join(commands), env=env)
    assert output.returncode == 0, output
    return output


def test_allocations_past_the_limit_fail_with_out_of_memory(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, "alloc a 60M alloc b 60M alloc c 40M alloc d 1")
    assert output.rcs("alloc") == [0, OOM, 0, OOM]


def test_freeing_restores_room(build: building.Build, claim_dir: pathlib.Path) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, "alloc a 100M alloc b 1M free a alloc b 100M")
    assert output.rcs("alloc") == [0, OOM, 0]
    assert output.rcs("free") == [0]


@pytest.mark.parametrize(
    "command",
    ["alloc", "managed", "async", "pool", "vmm"],
    ids=[
        "cuMemAlloc_v2",
        "cuMemAllocManaged",
        "cuMemAllocAsync",
        "cuMemAllocFromPoolAsync",
        "cuMemCreate",
    ],
)
def test_every_allocation_api_counts_against_the_limit(
    build: building.Build, claim_dir: pathlib.Path, command: str
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, f"{command} a 60M {command} b 60M free a {command} b 60M")
    assert output.rcs(command) == [0, OOM, 0]
    assert output.rcs("free") == [0]


def test_pitched_allocations_count_the_pitch_the_driver_returned(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    # The fake pads rows to 512 bytes: 300 x 100 takes 512 x 100, exactly the limit.
    claim = claims.write(claim_dir, {GPU0: 512 * 100})
    output = _run(build, claim, "pitch p 300 100 alloc x 1 free p alloc x 1")
    assert [line.number("pitch") for line in output.results("pitch")] == [512]
    assert output.rcs("pitch") == [0]
    assert output.rcs("alloc") == [OOM, 0]


def test_arrays_are_charged_an_upper_estimate(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    # 100 x 100 floats: rows padded to 512 bytes, 51,200 bytes rounded up to 64 KiB.
    claim = claims.write(claim_dir, {GPU0: 1 * MiB})
    output = _run(
        build,
        claim,
        f"array a 100 100 alloc x {MiB - 65536} alloc y 1 free a alloc y 1",
        "array3d b 10 10 10 free b",
    )
    assert output.rcs("array") == [0]
    assert output.rcs("alloc") == [0, OOM, 0]
    assert output.rcs("array3d") == [OOM]


def test_a_failed_driver_allocation_is_not_charged(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(
        build, claim, "alloc a 40M alloc b 40M alloc c 60M", extra={"FAKE_FAIL_ALLOC_NTH": "2"}
    )
    assert output.rcs("alloc") == [0, OOM, 0]  # b failed in the driver; c still fits


def test_unknown_and_double_frees_pass_through_uncounted(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    with programs.Session(build, "harness_direct", env=env) as program:
        assert program.send("freeptr 0x1234").rc == 1  # CUDA_ERROR_INVALID_VALUE, the driver's
        pointer = program.send("alloc a 60M").values["ptr"]
        assert program.send("free a").rc == 0
        assert program.send(f"freeptr {pointer}").rc == 1
        assert program.send("alloc b 100M").rc == 0  # released once, not twice
        assert program.send("alloc c 1").rc == OOM
        assert program.finish() == 0


def test_devices_the_claim_does_not_limit_are_untouched(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 10 * MiB})
    output = _run(
        build, claim, "dev 1 alloc a 1G vmm v 1G dev 0 alloc b 1G", extra={"FAKE_GPU_COUNT": "2"}
    )
    assert output.rcs("alloc") == [0, OOM]
    assert output.rcs("vmm") == [0]


def test_the_context_reserve_is_charged_once_per_process_and_device(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(
        claim_dir, {GPU0: 25 * MiB}, extra={"context_reserve_bytes": str(10 * MiB)}
    )
    env = programs.environment(build, config=claim.config)
    with programs.Session(build, "harness_direct", env=env) as first:
        assert first.send("alloc a 1M").rc == 0  # 11 MiB
        output = _run(build, claim, "alloc b 1M alloc c 4M")  # 22 MiB, then 26 > 25
        assert output.rcs("alloc") == [0, OOM]
        assert first.send("alloc d 14M").rc == 0  # no second reserve: 11 + 14 = 25
        assert first.finish() == 0


def test_allocations_are_counted_rounded_up_to_round_bytes(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 10 * MiB}, extra={"round_bytes": str(2 * MiB)})
    output = _run(build, claim, "alloc a 1 alloc b 1 alloc c 1 alloc d 1 alloc e 1 alloc f 1")
    assert output.rcs("alloc") == [0, 0, 0, 0, 0, OOM]


def test_requests_too_large_to_count_are_refused(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 64 * GiB}, extra={"round_bytes": str(2 * MiB)})
    output = _run(build, claim, f"alloc a {2**64 - 1} pitch p {2**63} 4 alloc b 1G")
    assert output.rcs("alloc") == [OOM, 0]
    assert output.rcs("pitch") == [OOM]
