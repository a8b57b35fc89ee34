"""What programs are told about memory.

Covers: cuMemGetInfo_v2 reporting total = min(limit, physical) and free = what the claim has left,
never more than is physically free; cuDeviceTotalMem_v2 clamped per device; NVML
(nvmlDeviceGetMemoryInfo and _v2, linked or found through dlsym) showing the claim's usage across
its processes; every report unchanged on unlimited devices and without GPUQ_CONFIG.
"""

from __future__ import annotations

import pathlib

from tests.preload import building, claims, programs
from tests.preload.claims import GiB, MiB

GPU0, GPU1 = claims.FAKE_UUIDS[:2]
PHYSICAL = 16 * GiB  # the fake's default


def _run(
    build: building.Build,
    claim: claims.Claim | None,
    commands: str,
    *,
    program: str = "harness_direct",
    extra: dict[str, str] | None = None,
) -> programs.Output:
    env = programs.environment(build, config=claim.config if claim else None, extra=extra)
    output = programs.run(build, program, commands, env=env)
    assert output.returncode == 0, output
    return output


def test_mem_get_info_reports_the_limit_and_what_is_left(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, "info alloc a 30M info")
    assert [(line.number("total"), line.number("free")) for line in output.results("info")] == [
        (100 * MiB, 100 * MiB),
        (100 * MiB, 70 * MiB),
    ]


def test_a_limit_above_the_physical_memory_reports_the_physical_memory(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, "alloc a 10M info", extra={"FAKE_GPU_MEM_BYTES": str(64 * MiB)})
    (info,) = output.results("info")
    assert (info.number("total"), info.number("free")) == (64 * MiB, 54 * MiB)


def test_device_total_mem_is_clamped_per_device(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU1: 100 * MiB})
    output = _run(build, claim, "total 0 total 1", extra={"FAKE_GPU_COUNT": "2"})
    assert [line.number("bytes") for line in output.results("total")] == [PHYSICAL, 100 * MiB]


def test_nvml_reports_the_claims_usage_across_its_processes(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    with programs.Session(build, "harness_direct", env=env) as holder:
        assert holder.send("alloc a 30M").rc == 0
        for program in ("harness_direct", "harness_runtime"):  # linked; dlopen + dlsym
            output = _run(build, claim, "nvml 0 nvml2 0", program=program)
            for line in [*output.results("nvml"), *output.results("nvml2")]:
                assert line.rc == 0
                assert (line.number("total"), line.number("used"), line.number("free")) == (
                    100 * MiB,
                    30 * MiB,
                    70 * MiB,
                )
        assert holder.finish() == 0


def test_reports_are_unchanged_on_devices_without_a_limit(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _run(build, claim, "dev 1 info total 1 nvml 1", extra={"FAKE_GPU_COUNT": "2"})
    (info,) = output.results("info")
    assert (info.number("total"), info.number("free")) == (PHYSICAL, PHYSICAL)
    assert output.results("total")[0].number("bytes") == PHYSICAL
    assert output.results("nvml")[0].number("total") == PHYSICAL


def test_reports_are_unchanged_without_a_config(build: building.Build) -> None:
    output = _run(build, None, "alloc a 1G info total 0 nvml 0")
    assert output.rcs("alloc") == [0]
    (info,) = output.results("info")
    assert (info.number("total"), info.number("free")) == (PHYSICAL, PHYSICAL - GiB)
    assert output.results("total")[0].number("bytes") == PHYSICAL
    assert output.results("nvml")[0].number("total") == PHYSICAL
    assert output.messages() == []
