"""The container probe, run on this host against the fake libcuda.

Covers: the binary (warnings are errors in its build, it needs only libc, and its glibc floor);
the report's members, all present; which environment variables it reports; the CUDA view (UUIDs
in GPU-… text, memory, the library it loaded); the kernel test skipped without a crash when the
driver has no module calls; the allocation test up to its max, and stopped at a share's quota with
CUDA_ERROR_OUT_OF_MEMORY (2) when the quota library is preloaded; two held probes of one claim
sharing one account, and the memory coming back when a holder stops; ``--hold`` until SIGTERM or
SIGINT (exit 0) or for ``--hold-seconds``; usage errors (exit 2); the PTX it prints assembling
with ptxas when one is installed (``PTXAS``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping

import pytest

from e2e import probe
from tests.preload import claims
from tests.probe.conftest import GPU_MEMORY, UUIDS, Prober

MiB = 1 << 20
OOM = 2
REPORT_MEMBERS = {
    "probe",
    "env",
    "devices",
    "mounts",
    "ldcache",
    "cuda",
    "kernel",
    "alloc",
    "preload",
}


def test_the_binary_needs_only_libc(prober: Prober) -> None:
    listing = subprocess.run(
        ["objdump", "-p", str(prober.program)], capture_output=True, text=True, check=True
    ).stdout
    needed = {line.split()[1] for line in listing.splitlines() if "NEEDED" in line}
    assert needed == {"libc.so.6"}


def test_the_binary_runs_on_glibc_2_34_and_newer(prober: Prober) -> None:
    # dlopen/dlsym/dlinfo moved into libc in 2.34; images are built from this host's glibc.
    assert probe.glibc_floor(prober.program) <= (2, 34)


def test_every_member_is_reported_and_unasked_tests_are_null(prober: Prober) -> None:
    report, done = prober.run(env=prober.environment())
    assert set(report) == REPORT_MEMBERS
    assert report["probe"]["version"] == probe.REPORT_VERSION
    assert report["kernel"] is None
    assert report["alloc"] is None
    assert len(done.stdout.splitlines()) == 1


def test_only_the_driver_variables_are_reported(prober: Prober) -> None:
    extra = {
        "GPU_DRA_GPU_0_UUID": UUIDS[0],
        "NVIDIA_VISIBLE_DEVICES": "void",
        "CUDA_MPS_PIPE_DIRECTORY": "/mps",
        "GPUQ_LOG_LEVEL": "warn",
        "HOME": "/root",
        "MY_CUDA_THING": "no",
    }
    report, _ = prober.run(env=prober.environment(extra=extra))
    assert set(report["env"]) == {
        "GPU_DRA_GPU_0_UUID",
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_MPS_PIPE_DIRECTORY",
        "GPUQ_LOG_LEVEL",
        "LD_LIBRARY_PATH",
    }
    assert report["env"]["GPU_DRA_GPU_0_UUID"] == UUIDS[0]


def test_the_cuda_view_names_each_device_by_uuid(prober: Prober) -> None:
    report, _ = prober.run(env=prober.environment())
    cuda = report["cuda"]
    assert cuda["error"] is None
    assert cuda["library"] == str(prober.build.fakes / "libcuda.so.1")
    assert cuda["alloc_entry"] == cuda["library"]  # nothing intercepts
    assert cuda["driver_version"] == 12040
    assert cuda["device_count"] == 2
    assert [device["uuid"] for device in cuda["devices"]] == list(UUIDS)
    assert [device["total_memory"] for device in cuda["devices"]] == [GPU_MEMORY] * 2
    assert cuda["devices"][1]["memory_info"] == {"free": GPU_MEMORY, "total": GPU_MEMORY}


def test_without_a_driver_the_report_says_why(prober: Prober) -> None:
    report, _ = prober.run(
        "--kernel", "--alloc-step", "1Mi", env={"PATH": os.environ.get("PATH", "")}
    )
    error = report["cuda"]["error"]
    assert error is not None
    assert error["call"] == "dlopen"
    assert "libcuda.so.1" in (error["message"] or "")
    assert report["kernel"] == {"skipped": "libcuda.so.1 not found"}
    alloc = report["alloc"]
    assert alloc is not None
    assert alloc["error"] is not None


def test_the_kernel_test_is_skipped_on_a_driver_without_module_calls(prober: Prober) -> None:
    report, _ = prober.run("--kernel", env=prober.environment())
    assert report["kernel"] == {"skipped": "cuModuleLoadDataEx not found"}


def test_allocation_stops_at_the_max(prober: Prober) -> None:
    report, _ = prober.run(
        "--alloc-step", "300Mi", "--alloc-max", "1Gi", "--device", "1", env=prober.environment()
    )
    alloc = report["alloc"]
    assert alloc is not None
    assert alloc["device"] == 1
    assert (alloc["allocated"], alloc["allocations"], alloc["error"]) == (1 << 30, 4, None)
    assert alloc["memory_info"] == {"free": GPU_MEMORY - (1 << 30), "total": GPU_MEMORY}


def test_a_share_stops_at_its_quota_with_out_of_memory(
    prober: Prober, tmp_path: pathlib.Path
) -> None:
    claim = claims.write(tmp_path / "claim", {UUIDS[0]: 1 << 30})
    env = prober.environment(config=claim.config, preload=True)
    report, _ = prober.run("--alloc-step", "256Mi", "--alloc-max", "8Gi", env=env)
    alloc = report["alloc"]
    assert alloc is not None
    assert alloc["allocated"] == 1 << 30
    assert alloc["error"] == {
        "call": "cuMemAlloc_v2",
        "rc": OOM,
        "name": "CUDA_ERROR_OUT_OF_MEMORY",
        "message": None,
    }
    assert alloc["memory_info"] == {"free": 0, "total": 1 << 30}
    assert report["cuda"]["devices"][0]["total_memory"] == 1 << 30  # the quota, not the GPU
    assert report["cuda"]["devices"][1]["total_memory"] == GPU_MEMORY  # no limit there
    assert (report["cuda"]["alloc_entry"] or "").endswith("libgpuquota.so")
    assert report["preload"]["mapped"]


def _held(prober: Prober, env: Mapping[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts a holding probe; returns it and its report line (read as soon as it is printed)."""
    process = subprocess.Popen(
        prober.command("--hold", *args, env=env),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def _stop(process: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> int:
    process.send_signal(how)
    returncode = process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()
    return returncode


def test_two_held_probes_of_one_claim_share_its_quota(
    prober: Prober, tmp_path: pathlib.Path
) -> None:
    claim = claims.write(tmp_path / "claim", {UUIDS[0]: 1 << 30})
    env = prober.environment(config=claim.config, preload=True)
    first, line = _held(prober, env, "--alloc-step", "256Mi", "--alloc-max", "768Mi")
    try:
        held = probe.first_report(line)["alloc"]
        assert held is not None
        assert held["allocated"] == 768 * MiB
        second, _ = prober.run("--alloc-step", "256Mi", env=env)
        assert second["alloc"] is not None
        assert second["alloc"]["allocated"] == 256 * MiB  # what the first one left
    finally:
        assert _stop(first) == 0
    third, _ = prober.run("--alloc-step", "256Mi", env=env)
    assert third["alloc"] is not None
    assert third["alloc"]["allocated"] == 1 << 30  # the stopped holder's memory came back


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_hold_runs_until_signalled_and_exits_0(prober: Prober, how: signal.Signals) -> None:
    process, line = _held(prober, prober.environment())
    assert probe.first_report(line)["probe"]["pid"] == process.pid
    time.sleep(0.3)
    assert process.poll() is None
    assert _stop(process, how) == 0


def test_hold_seconds_ends_the_hold_by_itself(prober: Prober) -> None:
    done = subprocess.run(
        [str(prober.program), "--hold", "--hold-seconds", "1"],
        env=prober.environment(),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0
    assert probe.first_report(done.stdout)["probe"]["args"] == ["--hold", "--hold-seconds", "1"]


@pytest.mark.parametrize(
    "args",
    [["--alloc-step", "0"], ["--alloc-step", "12Xi"], ["--alloc-max", "1Gi"], ["--device"], ["-x"]],
    ids=["zero-step", "bad-unit", "max-without-step", "missing-value", "unknown"],
)
def test_usage_errors_exit_2_without_a_report(prober: Prober, args: list[str]) -> None:
    done = subprocess.run(
        [str(prober.program), *args], capture_output=True, text=True, timeout=10, check=False
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "usage:" in done.stderr


@pytest.mark.parametrize("target", ["sm_50", "sm_60", "sm_70"])
def test_the_kernel_ptx_assembles(prober: Prober, target: str, tmp_path: pathlib.Path) -> None:
    ptxas = os.environ.get("PTXAS") or shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("no ptxas (set PTXAS, e.g. from the nvidia-cuda-nvcc wheel)")
    ptx = tmp_path / "kernel.ptx"
    ptx.write_text(
        subprocess.run(
            [str(prober.program), "--print-ptx", target], capture_output=True, text=True, check=True
        ).stdout
    )
    for arch in (target, "sm_90"):
        subprocess.run(
            [ptxas, f"-arch={arch}", str(ptx), "-o", str(tmp_path / "kernel.cubin")], check=True
        )
