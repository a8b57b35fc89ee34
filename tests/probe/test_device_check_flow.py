"""The GPU machine's check (``hack/device-check.sh``, `e2e.devicecheck`), as far as it runs here.

Covers: judging a probe report per claim (the UUID CUDA saw against the claim's, one visible
device, device nodes on real GPUs, the kernel, the share's quota hit exactly with
CUDA_ERROR_OUT_OF_MEMORY and the library loaded); what the bundle carries (the plugin's runtime
dependencies, a working tree within the carried budget); and the whole flow in dry-run mode (real
control plane, fake kubelet, the plugin on fake GPUs, the probe against the fake libcuda in each
claim's CDI edits): every claim, MIG included, comes out ok. What needs a GPU (NVML, the kernel
launch, real device nodes) runs only on that machine.
"""

from __future__ import annotations

import copy
import os
import pathlib
import shutil
import tempfile
from typing import Any, cast

import pytest

from e2e import probe
from e2e.devicecheck import bundling, checks, containers, running
from e2e.harness import binaries
from tests.preload import building

GPU, SHARE, MIG = checks.CHECKS
UUID = "GPU-11111111-2222-3333-4444-555555555555"
GIB = 1 << 30


def _report(**changes: Any) -> probe.Report:
    base: dict[str, Any] = {
        "probe": {"version": 1, "pid": 1, "uid": 0, "args": []},
        "env": {"GPU_DRA_GPU_0_UUID": UUID, "NVIDIA_VISIBLE_DEVICES": "void"},
        "devices": [
            {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0, "mode": "0666"},
            {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255, "mode": "0666"},
        ],
        "mounts": [],
        "ldcache": {"source": "/sbin/ldconfig", "libraries": {}, "error": None},
        "cuda": {
            "library": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "alloc_entry": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "driver_version": 13000,
            "device_count": 1,
            "devices": [{"ordinal": 0, "uuid": UUID, "total_memory": 80 * GIB}],
            "error": None,
        },
        "kernel": {"device": 0, "ptx_target": "sm_70", "elements": 1000, "wrong": 0, "ok": True},
        "alloc": None,
        "preload": {"file": None, "mapped": False, "library": None},
    }
    report = copy.deepcopy(base) | changes
    return cast(probe.Report, report)


def _oom() -> probe.Error:
    return {"call": "cuMemAlloc_v2", "rc": 2, "name": "CUDA_ERROR_OUT_OF_MEMORY", "message": None}


def _share_report(allocated: int, *, mapped: bool = True) -> probe.Report:
    report = _report(
        alloc={"device": 0, "allocated": allocated, "error": _oom()},
        preload={"file": "/lib/libgpuquota.so\n", "mapped": mapped, "library": "x"},
    )
    report["cuda"]["devices"][0]["total_memory"] = checks.SHARE_QUOTA
    return report


def test_a_whole_gpu_that_sees_its_uuid_and_runs_the_kernel_is_ok() -> None:
    result = checks.judge(GPU, device="gpu-0", report=_report(), real_gpus=True)
    assert result["errors"] == []
    assert (result["ok"], result["kernel_ok"], result["uuid_seen"]) == (True, True, UUID)


def test_uuids_compare_by_their_hex_whatever_the_prefix() -> None:
    report = _report(env={"GPU_DRA_GPU_0_MIG_1G10GB_0_UUID": "MIG-" + UUID[4:].upper()})
    assert checks.judge(MIG, device="gpu-0-mig", report=report, real_gpus=True)["ok"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"env": {"GPU_DRA_GPU_0_UUID": "GPU-99999999-2222-3333-4444-555555555555"}}, "CUDA sees"),
        ({"env": {}}, "expected one GPU_DRA_*_UUID"),
        ({"devices": []}, "no /dev/nvidiactl"),
        ({"kernel": {"skipped": "cuModuleLoadDataEx not found"}}, "kernel test skipped"),
        (
            {
                "kernel": {
                    "ok": False,
                    "error": {
                        "call": "cuModuleLoadDataEx",
                        "rc": 218,
                        "name": "X",
                        "message": None,
                    },
                    "jit_log": "ptxas fatal",
                }
            },
            "kernel test failed: cuModuleLoadDataEx 218 X (JIT: ptxas fatal)",
        ),
    ],
    ids=["other-uuid", "no-uuid-env", "no-device-nodes", "no-kernel-calls", "jit-failure"],
)
def test_what_is_wrong_is_named(changes: dict[str, Any], error: str) -> None:
    result = checks.judge(GPU, device="gpu-0", report=_report(**changes), real_gpus=True)
    assert not result["ok"]
    assert any(error in message for message in result["errors"]), result["errors"]


def test_a_second_visible_gpu_is_an_error() -> None:
    report = _report()
    report["cuda"]["device_count"] = 2
    result = checks.judge(GPU, device="gpu-0", report=report, real_gpus=True)
    assert "the container sees 2 CUDA devices, not 1" in result["errors"]


def test_fake_gpus_need_no_device_nodes_and_cannot_run_kernels() -> None:
    report = _report(devices=[], kernel={"skipped": "cuModuleLoadDataEx not found"})
    result = checks.judge(GPU, device="gpu-0", report=report, real_gpus=False)
    assert (result["ok"], result["kernel_ok"]) == (True, None)


def test_a_share_must_stop_exactly_at_its_quota() -> None:
    hit = checks.judge(SHARE, device="gpu-0-shared", report=_share_report(4 * GIB), real_gpus=True)
    assert hit["ok"]
    assert hit["quota"] == {"limit": 4 * GIB, "allocated": 4 * GIB, "hit": True}
    over = checks.judge(SHARE, device="gpu-0-shared", report=_share_report(5 * GIB), real_gpus=True)
    assert not over["ok"]
    assert over["quota"] is not None
    assert not over["quota"]["hit"]


def test_a_share_without_the_quota_library_fails() -> None:
    report = _share_report(4 * GIB, mapped=False)
    result = checks.judge(SHARE, device="gpu-0-shared", report=report, real_gpus=True)
    assert "the quota library is not loaded in the container" in result["errors"]


def test_skipped_and_failed_claims() -> None:
    assert checks.skipped(MIG, "no MIG")["ok"]
    failed = checks.failed(GPU, device=None, error="not scheduled: 0/1 nodes")
    assert (failed["ok"], failed["errors"]) == (False, ["not scheduled: 0/1 nodes"])


def test_update_ldcache_folders_stand_in_for_the_hook() -> None:
    hooks = [
        {
            "hookName": "createContainer",
            "path": "/h",
            "args": ["nvidia-cdi-hook", "create-symlinks"],
        },
        {
            "hookName": "createContainer",
            "path": "/h",
            "args": ["nvidia-cdi-hook", "update-ldcache", "--folder", "/usr/lib64", "--folder=/x"],
        },
    ]
    assert containers._ldcache_folders(hooks) == ["/usr/lib64", "/x"]


def test_the_bundle_carries_the_plugins_dependencies() -> None:
    names = {requirement.split("==")[0] for requirement in bundling.requirements()}
    assert {"grpcio", "protobuf", "kubernetes", "structlog", "nvidia-ml-py"} <= names


def test_the_working_tree_leaves_room_for_the_bundle() -> None:
    assert bundling.tree_bytes() < bundling.BUDGET // 4


def test_the_archive_is_cut_into_pieces_that_join_back(tmp_path: pathlib.Path) -> None:
    archive, out = tmp_path / "bundle.tar.xz", tmp_path / "device"
    data = os.urandom(9 << 20)
    archive.write_bytes(data)
    out.mkdir()
    pieces = bundling._cut(archive, out, size=4 << 20)
    assert pieces == ["piece-1", "piece-2", "piece-3"]
    sizes = [(out / piece / bundling.PIECE).stat().st_size for piece in pieces]
    assert sizes == [4 << 20, 4 << 20, 1 << 20]
    assert b"".join((out / piece / bundling.PIECE).read_bytes() for piece in pieces) == data


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_dry_run_passes_every_claim() -> None:
    build = building.build(building.Flavour.PLAIN)
    bin_dir = binaries.ensure_built()
    # A short path: the kubelet's registry socket paths must stay under 108 bytes.
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-dc-", dir="/tmp"))
    settings = running.Settings(
        bin_dir=bin_dir,
        work_dir=work_dir,
        probe=probe.build(),
        preload_library=build.library,
        fake_driver=build.fakes,
    )
    try:
        summary = running.run(settings)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    assert summary["error"] is None, summary["error"]
    assert summary["mode"] == "dry-run"
    by_claim = {claim["claim"]: claim for claim in summary["claims"]}
    assert set(by_claim) == {"gpu", "share", "mig"}
    for claim in summary["claims"]:
        assert claim["ok"], claim
    assert by_claim["share"]["quota"] == {"limit": 4 * GIB, "allocated": 4 * GIB, "hit": True}
    assert "-mig-" in (by_claim["mig"]["device"] or "")
    assert summary["ok"]
