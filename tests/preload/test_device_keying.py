"""Limits are keyed by UUID, never by CUDA's device numbering.

Covers: the limit following its GPU whichever position CUDA gives it (the fake's FAKE_GPU_UUIDS
order standing in for a reordered CUDA_VISIBLE_DEVICES), and MIG devices keyed by their MIG UUID.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.preload import building, claims, programs
from tests.preload.claims import GiB, MiB

A = "GPU-aaaaaaaa-1111-2222-3333-444444444444"
B = "GPU-bbbbbbbb-1111-2222-3333-444444444444"
MIG = "MIG-cccccccc-1111-2222-3333-444444444444"
OOM = 2


@pytest.mark.parametrize("order", [(A, B), (B, A)], ids=["A,B", "B,A"])
def test_the_limit_follows_its_gpu_in_any_device_order(
    build: building.Build, claim_dir: pathlib.Path, order: tuple[str, str]
) -> None:
    claim = claims.write(claim_dir, {B: 100 * MiB})
    env = programs.environment(
        build, config=claim.config, extra={"FAKE_GPU_UUIDS": ",".join(order)}
    )
    output = programs.run(
        build,
        "harness_direct",
        "uuid 0 uuid 1 dev 0 alloc a 1G info dev 1 alloc b 1G info",
        env=env,
    )
    assert [line.values["uuid"] for line in output.results("uuid")] == list(order)
    limited = order.index(B)
    assert output.rcs("alloc") == [OOM if ordinal == limited else 0 for ordinal in (0, 1)]
    totals = [line.number("total") for line in output.results("info")]
    assert totals == [100 * MiB if ordinal == limited else 16 * GiB for ordinal in (0, 1)]


def test_mig_devices_are_keyed_by_their_mig_uuid(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {MIG: 100 * MiB})
    env = programs.environment(build, config=claim.config, extra={"FAKE_GPU_UUIDS": f"{A},{MIG}"})
    output = programs.run(
        build, "harness_direct", "dev 1 alloc a 60M alloc b 60M dev 0 alloc c 1G", env=env
    )
    assert output.rcs("alloc") == [0, OOM, 0]
