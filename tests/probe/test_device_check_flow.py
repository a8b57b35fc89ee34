"""The GPU machine's check (``hack/device-check.sh``, `e2e.devicecheck`), as far as it runs here.

Covers: judging the probe reports of a claim's containers (the UUID CUDA saw against the claim's,
one visible device, device nodes on real GPUs, the kernel; for the share, its two containers on one
account: their allocations, a context reserve per process that allocated and what ``main`` was
left when refused with CUDA_ERROR_OUT_OF_MEMORY make the quota to the byte, in any order they ran,
and the library is loaded in both); the pods the check makes (a container per probe, the claim in
each, the fake GPU pinned by CEL); what the bundle carries (the plugin's runtime dependencies, a
working tree within the carried budget); and the whole flow in dry-run mode (real control plane,
containerd and runc, the fake kubelet starting each claim's pod through CRI, the plugin on fake
GPUs over a synthetic driver root, the probe in real containers with the fake libcuda as the
driver's library): every claim, MIG included, comes out ok, the share's containers fill one
account, and nothing is left behind. What needs a GPU (NVML, the kernel launch, real device
nodes) runs only on that machine.
"""

from __future__ import annotations

import copy
import os
import pathlib
import shutil
import tempfile
from typing import Any, cast

import pytest

from dra_driver.backends.fake import specs
from e2e import probe
from e2e.devicecheck import __main__ as devicecheck
from e2e.devicecheck import bundling, checks, containers, running
from e2e.harness import images

GPU, SHARE, MIG = checks.CHECKS
UUID = "GPU-11111111-2222-3333-4444-555555555555"
MIB = 1 << 20
GIB = 1 << 30
RESERVE = 544 * MIB


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


def _share_report(
    allocated: int,
    *,
    left: int = 0,
    mapped: bool = True,
    refused: bool = True,
    kernel: bool = True,
) -> probe.Report:
    """A share's probe: `allocated` in 256 MiB steps, then (if `refused`) out of memory with
    `left` free as the quota reports it."""
    memory = {"free": left, "total": checks.SHARE_QUOTA}
    report = _report(
        alloc={
            "device": 0,
            "step": 256 * MIB,
            "allocated": allocated,
            "error": _oom() if refused else None,
            "memory_info": memory,
        },
        preload={"file": "/lib/libgpuquota.so\n", "mapped": mapped, "library": "x"},
    )
    if not kernel:
        report["kernel"] = None
    report["cuda"]["devices"][0]["total_memory"] = checks.SHARE_QUOTA
    return report


def _holder(held: int, **changes: Any) -> probe.Report:
    return _share_report(held, refused=held < checks.HOLDER_MAX, kernel=False, **changes)


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


def _judge_share(
    main: probe.Report, holder: probe.Report, *, reserve: int = RESERVE
) -> checks.ClaimResult:
    return checks.judge(
        SHARE,
        device="gpu-0-shared",
        report=main,
        holder=holder,
        context_reserve=reserve,
        real_gpus=True,
    )


# In MiB, with the H100's 544 MiB context reserve per process that allocated.
@pytest.mark.parametrize(
    ("allocated", "held", "left", "reserve"),
    [(1792, 1024, 192, 544), (3328, 0, 224, 544), (3072, 1024, 0, 0), (2048, 768, 192, 544)],
    ids=["holder-first", "main-first-holder-refused", "no-reserve", "interleaved"],
)
def test_a_shares_two_containers_fill_its_quota_to_the_byte_together(
    allocated: int, held: int, left: int, reserve: int
) -> None:
    main, holder = _share_report(allocated * MIB, left=left * MIB), _holder(held * MIB)
    result = _judge_share(main, holder, reserve=reserve * MIB)
    assert result["errors"] == []
    assert result["quota"] == {
        "limit": 4 * GIB,
        "allocated": allocated * MIB,
        "held": held * MIB,
        "context_reserve": reserve * MIB,
        "left": left * MIB,
        "hit": True,
    }


@pytest.mark.parametrize(
    ("allocated", "held", "left"),
    [(3328, 1024, 224), (1024, 1024, 1504), (4096, 1024, 0)],
    ids=["two-accounts", "refused-with-room-left", "over-quota"],
)
def test_a_share_whose_containers_do_not_fill_one_account_fails(
    allocated: int, held: int, left: int
) -> None:
    result = _judge_share(_share_report(allocated * MIB, left=left * MIB), _holder(held * MIB))
    assert not result["ok"]
    assert result["quota"] is not None
    assert not result["quota"]["hit"]
    assert result["errors"][0].startswith(f"quota {4 * GIB}: allocated {allocated * MIB} beside")


def test_a_share_must_be_refused_by_the_quota_not_stop_on_its_own() -> None:
    main = _share_report(1792 * MIB, left=192 * MIB, refused=False)
    result = _judge_share(main, _holder(1 * GIB))
    assert not result["ok"]
    assert "then no error" in result["errors"][0]


def test_a_share_without_the_quota_library_fails_in_either_container() -> None:
    main = _share_report(1792 * MIB, left=192 * MIB)
    result = _judge_share(main, _holder(1 * GIB, mapped=False))
    assert result["errors"] == ["the quota library is not loaded in container holder"]


def test_what_the_holder_sees_wrong_is_named_as_the_holders() -> None:
    holder = _holder(1 * GIB)
    holder["env"] = {"GPU_DRA_GPU_0_SHARED_UUID": "GPU-99999999-2222-3333-4444-555555555555"}
    result = _judge_share(_share_report(1792 * MIB, left=192 * MIB), holder)
    assert [error.split(":")[0] for error in result["errors"]] == ["holder"]
    assert "CUDA sees" in result["errors"][0]


def test_the_share_pod_runs_main_and_holder_on_one_claim_with_the_fake_gpu() -> None:
    env = containers.fake_driver_env(node="n", gpu_index=1, mig=False)
    pod = containers.pod(
        "share", node="n", image="img", claim="share", containers=SHARE.containers, env=env
    )
    spec = pod["spec"]
    assert spec["resourceClaims"] == [{"name": "c0", "resourceClaimName": "share"}]
    assert [c["name"] for c in spec["containers"]] == ["holder", "main"]
    for container in spec["containers"]:
        assert container["command"] == [images.PROBE_PATH]
        assert "--hold" in container["args"]  # both keep their memory until the pod goes
        assert container["resources"] == {"claims": [{"name": "c0"}]}
        assert {"name": "FAKE_GPU_UUIDS", "value": specs.gpu_uuid("n", 1)} in container["env"]
    assert spec["containers"][1]["args"] == list(SHARE.probe_args)


def test_a_mig_claim_is_pinned_by_its_parent_and_sees_the_first_mig_device() -> None:
    assert containers.pinned(gpu_index=2, mig=True) == [
        'device.attributes["gpu.dra.dev"].parentIndex == 2'
    ]
    env = containers.fake_driver_env(node="n", gpu_index=2, mig=True)
    assert env["FAKE_GPU_UUIDS"] == specs.mig_uuid(specs.gpu_uuid("n", 2), 1)


def test_skipped_and_failed_claims() -> None:
    assert checks.skipped(MIG, "no MIG")["ok"]
    failed = checks.failed(GPU, device=None, error="not scheduled: 0/1 nodes")
    assert (failed["ok"], failed["errors"]) == (False, ["not scheduled: 0/1 nodes"])


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
def test_the_dry_run_passes_every_claim_in_real_containers() -> None:
    # A short path: the kubelet's registry socket paths must stay under 108 bytes.
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-dc-", dir="/tmp"))
    try:
        summary = running.run(devicecheck.dry_run_settings(work_dir))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    assert summary["error"] is None, summary["error"]
    assert summary["mode"] == "dry-run"
    by_claim = {claim["claim"]: claim for claim in summary["claims"]}
    assert set(by_claim) == {"gpu", "share", "mig"}
    for claim in summary["claims"]:
        assert claim["ok"], claim
    assert by_claim["gpu"]["uuid_seen"] == specs.gpu_uuid(running.NODE, 0)
    share = by_claim["share"]["quota"]
    assert share is not None
    assert (share["limit"], share["hit"]) == (4 * GIB, True)
    assert share["allocated"] is not None
    assert share["held"] is not None
    assert share["left"] is not None
    processes = (share["allocated"] > 0) + (share["held"] > 0)
    # One account for both containers: their allocations, a context reserve per process (the
    # H100's, from the claim's quota.conf) and what main was left when refused make the quota.
    assert share["context_reserve"] == 544 * MIB
    charged = share["allocated"] + share["held"] + processes * share["context_reserve"]
    assert charged + share["left"] == 4 * GIB
    assert "-mig-" in (by_claim["mig"]["device"] or "")
    mig_seen, mig_claimed = by_claim["mig"]["uuid_seen"], by_claim["mig"]["uuid_expected"]
    assert mig_claimed is not None
    assert mig_claimed.startswith("MIG-")
    assert (mig_seen or "").split("-", 1)[1] == mig_claimed.split("-", 1)[1]
    assert summary["leftovers"] == []
    assert summary["ok"]
