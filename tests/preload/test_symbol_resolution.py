"""Every way a program can reach the driver ends at the library.

Covers: cuGetProcAddress_v2 the way the CUDA runtime uses it (asked for cuGetProcAddress itself,
then for everything, with cudaVersion 12000 and each stream flag), handing out the library's
wrappers, _ptsz for the per-thread default stream reaching the driver's _ptsz and legacy reaching
legacy, and the limit enforced through them; dlsym on the libcuda.so.1 handle likewise; dlsym's
RTLD_NEXT still meaning "after the caller" for a library loaded after ours; the library exporting
exactly the interposed names, which are those of its hook table (hooks.h); programs that never
touch CUDA unaffected.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest

from tests.preload import building, claims, programs, statefile
from tests.preload.claims import MiB

GPU0 = claims.FAKE_UUIDS[0]
OOM = 2
LIBRARY = "libgpuquota.so"
FLAGS = pytest.mark.parametrize(
    "flags", [0, 1, 2], ids=["default", "legacy-stream", "per-thread-stream"]
)

INTERPOSED = {
    "cuInit",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemAllocPitch_v2",
    "cuMemAllocManaged",
    "cuMemCreate",
    "cuMemRelease",
    "cuMemAllocAsync",
    "cuMemAllocAsync_ptsz",
    "cuMemFreeAsync",
    "cuMemFreeAsync_ptsz",
    "cuMemAllocFromPoolAsync",
    "cuMemAllocFromPoolAsync_ptsz",
    "cuArrayCreate_v2",
    "cuArray3DCreate_v2",
    "cuArrayDestroy",
    "cuMemGetInfo_v2",
    "cuDeviceTotalMem_v2",
    "cuMemMap",
    "cuMemUnmap",
    "cuMemExportToShareableHandle",
    "cuMemImportFromShareableHandle",
    "cuMemRetainAllocationHandle",
    "cuMemPoolCreate",
    "cuMemPoolDestroy",
    "cuMemPoolTrimTo",
    "cuStreamSynchronize",
    "cuStreamSynchronize_ptsz",
    "cuCtxSynchronize",
    "cuEventSynchronize",
    "cuCtxSetLimit",
    "cuGraphAddMemAllocNode",
    "cuMipmappedArrayCreate",
    "cuMipmappedArrayDestroy",
    "cuModuleGetGlobal_v2",
    "cuModuleUnload",
    "cuLibraryGetGlobal",
    "cuLibraryUnload",
    "cuGetProcAddress",
    "cuGetProcAddress_v2",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "dlsym",
}


def _runtime(
    build: building.Build, claim: claims.Claim, options: list[str], commands: str
) -> programs.Output:
    env = programs.environment(build, config=claim.config, extra={"FAKE_TRACE": "1"})
    output = programs.run(build, "harness_runtime", commands, options=options, env=env)
    assert output.returncode == 0, output
    return output


def _resolved(output: programs.Output) -> dict[str, tuple[str, str]]:
    return {
        line.words[0]: (line.values["in"], line.values["symbol"])
        for line in output.results("resolved")
    }


def _driver_calls(output: programs.Output) -> list[str]:
    return [
        text.split()[1] for text in output.stderr.splitlines() if text.startswith("fake: cuMem")
    ]


@FLAGS
def test_cu_get_proc_address_hands_out_the_librarys_functions(
    build: building.Build, claim_dir: pathlib.Path, flags: int
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _runtime(
        build,
        claim,
        [f"--flags={flags}", "--version=12000"],
        "alloc a 60M alloc b 60M async c 40M async d 1 free c pool e 40M free e",
    )
    suffix = "_ptsz" if flags == 2 else ""
    assert _resolved(output) == {
        "cuGetProcAddress": (LIBRARY, "cuGetProcAddress_v2"),
        "cuMemAlloc": (LIBRARY, "cuMemAlloc_v2"),
        "cuMemAllocAsync": (LIBRARY, f"cuMemAllocAsync{suffix}"),
        "cuMemFreeAsync": (LIBRARY, f"cuMemFreeAsync{suffix}"),
        "cuMemAllocFromPoolAsync": (LIBRARY, f"cuMemAllocFromPoolAsync{suffix}"),
        "cuMemGetInfo": (LIBRARY, "cuMemGetInfo_v2"),
    }
    assert output.rcs("alloc") == [0, OOM]
    assert output.rcs("async") == [0, OOM]
    assert output.rcs("pool") == [0]
    assert _driver_calls(output) == [
        "cuMemAlloc_v2",
        f"cuMemAllocAsync{suffix}",
        f"cuMemFreeAsync{suffix}",
        f"cuMemAllocFromPoolAsync{suffix}",
        f"cuMemFreeAsync{suffix}",
    ]


@pytest.mark.parametrize("flags", [0, 2], ids=["legacy-names", "ptsz-names"])
def test_dlsym_on_the_driver_handle_hands_out_the_librarys_functions(
    build: building.Build, claim_dir: pathlib.Path, flags: int
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    output = _runtime(
        build,
        claim,
        ["--resolve=dlsym", f"--flags={flags}"],
        "alloc a 60M alloc b 60M async c 40M async d 1",
    )
    suffix = "_ptsz" if flags == 2 else ""
    resolved = _resolved(output)
    assert resolved["cuMemAlloc"] == (LIBRARY, "cuMemAlloc_v2")
    assert resolved["cuMemAllocAsync"] == (LIBRARY, f"cuMemAllocAsync{suffix}")
    assert output.rcs("alloc") == [0, OOM]
    assert output.rcs("async") == [0, OOM]
    assert _driver_calls(output) == ["cuMemAlloc_v2", f"cuMemAllocAsync{suffix}"]


def test_rtld_next_still_means_after_the_caller(build: building.Build) -> None:
    env = programs.environment(build)
    output = programs.run(build, "rtld_next_check", env=env)
    assert output.stdout.strip() == "next=second"


def test_the_hook_table_names_every_interposed_function() -> None:
    table = (building.PRELOAD / "hooks.h").read_text()
    hooks = set(re.findall(r"^\s+X\((\w+), (?:CUDA|NVML), ", table, flags=re.MULTILINE))
    assert hooks == INTERPOSED - {"dlsym"}


def test_the_library_exports_exactly_the_interposed_functions(build: building.Build) -> None:
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(build.library)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    exported = {line.split()[-1] for line in symbols if line.strip()}
    assert exported - {"_init", "_fini"} == INTERPOSED


def test_programs_that_never_touch_cuda_are_unaffected(
    build: building.Build, claim_dir: pathlib.Path
) -> None:
    claim = claims.write(claim_dir, {GPU0: 100 * MiB})
    env = programs.environment(build, config=claim.config)
    output = programs.run(build, "/bin/sh", options=["-c", "echo hello"], env=env)
    assert (output.returncode, output.stdout, output.stderr) == (0, "hello\n", "")
    assert statefile.read(claim.state).high_water == 0  # nothing attached without CUDA
