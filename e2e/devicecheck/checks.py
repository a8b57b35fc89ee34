"""The claims the device check makes and how the probe's report of each is judged.

One claim at a time (a node with one GPU cannot hold a whole-GPU claim beside a share or a MIG
device): a whole GPU, a share with a memory quota, and a MIG device. Whole GPU and share must
work; MIG is reported but never fails the check, since a MIG mode change needs a GPU reset that a
machine (a VM with a passed-through GPU, say) may refuse. Judging is pure: a report in, a verdict
with every problem named out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypedDict

from e2e import probe

GIB = 1 << 30
OUT_OF_MEMORY = 2
SHARE_QUOTA = 4 * GIB


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    """of the claim and its pod"""
    device_class: str
    capacity: Mapping[str, str] | None
    probe_args: tuple[str, ...]
    required: bool
    """a failure fails the whole check"""
    quota_bytes: int | None = None
    """the share's memory limit, which the probe's allocation test must hit exactly"""


CHECKS = (
    Check("gpu", "gpu.dra.dev", None, ("--kernel",), required=True),
    Check(
        "share",
        "shared.gpu.dra.dev",
        {"memory": "4Gi"},
        ("--kernel", "--alloc-step", "256Mi", "--alloc-max", "5Gi"),
        required=True,
        quota_bytes=SHARE_QUOTA,
    ),
    Check("mig", "mig.gpu.dra.dev", None, ("--kernel",), required=False),
)


class Quota(TypedDict):
    limit: int
    allocated: int | None
    hit: bool
    """the allocation test stopped exactly at the limit with CUDA_ERROR_OUT_OF_MEMORY"""


class ClaimResult(TypedDict):
    claim: str
    required: bool
    device: str | None
    """the allocated device, e.g. gpu-0, gpu-0-mig-1g10gb-0, gpu-0-shared"""
    uuid_expected: str | None
    """the container's GPU_DRA_<DEVICE>_UUID"""
    uuid_seen: str | None
    """what CUDA in the container reported"""
    kernel_ok: bool | None
    """None where the driver cannot run kernels (the fake libcuda)"""
    quota: Quota | None
    skipped: str | None
    errors: list[str]
    ok: bool


def skipped(check: Check, reason: str) -> ClaimResult:
    return _result(check, device=None, errors=[], skipped=reason)


def failed(check: Check, *, device: str | None, error: str) -> ClaimResult:
    """A claim that never got as far as a report (not scheduled, not prepared, no output)."""
    return _result(check, device=device, errors=[error], skipped=None)


def judge(check: Check, *, device: str, report: probe.Report, real_gpus: bool) -> ClaimResult:
    """Everything the probe saw that is wrong for `check`, in one verdict."""
    result = _result(check, device=device, errors=[], skipped=None)
    errors = result["errors"]
    cuda = report["cuda"]
    if cuda["error"] is not None:
        errors.append(f"CUDA: {_error_text(cuda['error'])}")
    if cuda["device_count"] not in (None, 1):
        errors.append(f"the container sees {cuda['device_count']} CUDA devices, not 1")
    result["uuid_expected"] = _uuid_from_env(report["env"], errors)
    result["uuid_seen"] = cuda["devices"][0].get("uuid") if cuda["devices"] else None
    if result["uuid_expected"] and _hex(result["uuid_seen"]) != _hex(result["uuid_expected"]):
        errors.append(f"CUDA sees {result['uuid_seen']}, the claim is {result['uuid_expected']}")
    if real_gpus:
        _judge_nodes(report["devices"], errors)
    if "--kernel" in check.probe_args:
        result["kernel_ok"] = _judge_kernel(report["kernel"], real_gpus=real_gpus, errors=errors)
    if check.quota_bytes is not None:
        result["quota"] = _judge_quota(report, check.quota_bytes, errors)
    result["ok"] = not errors
    return result


def _result(
    check: Check, *, device: str | None, errors: list[str], skipped: str | None
) -> ClaimResult:
    return {
        "claim": check.name,
        "required": check.required,
        "device": device,
        "uuid_expected": None,
        "uuid_seen": None,
        "kernel_ok": None,
        "quota": None,
        "skipped": skipped,
        "errors": errors,
        "ok": skipped is not None and not errors,
    }


def _error_text(error: probe.Error) -> str:
    return " ".join(
        str(part)
        for part in (error["call"], error["rc"], error["name"], error["message"])
        if part is not None
    )


def _uuid_from_env(env: Mapping[str, str], errors: list[str]) -> str | None:
    uuids = [
        value
        for key, value in env.items()
        if key.startswith("GPU_DRA_") and key.endswith("_UUID") and not key.endswith("PARENT_UUID")
    ]
    if len(uuids) != 1:
        errors.append(f"expected one GPU_DRA_*_UUID in the container, found {len(uuids)}")
        return None
    return uuids[0]


def _hex(uuid: str | None) -> str | None:
    """GPU-… and MIG-… compare by their hex part (CUDA gives bytes only, the probe guesses)."""
    return uuid.split("-", 1)[1].lower() if uuid and "-" in uuid else uuid


def _judge_nodes(nodes: list[probe.Node], errors: list[str]) -> None:
    paths = {node["path"] for node in nodes if node["type"] == "c"}
    if "/dev/nvidiactl" not in paths:
        errors.append("no /dev/nvidiactl in the container")
    if not any(path[len("/dev/nvidia") :].isdigit() for path in paths):
        errors.append("no /dev/nvidia<minor> in the container")


def _judge_kernel(
    kernel: probe.Kernel | None, *, real_gpus: bool, errors: list[str]
) -> bool | None:
    if kernel is None or ("skipped" in kernel and not real_gpus):
        return None
    if "skipped" in kernel:
        errors.append(f"kernel test skipped: {kernel['skipped']}")
        return False
    if not kernel.get("ok"):
        error = kernel.get("error")
        log = kernel.get("jit_log")
        errors.append(
            "kernel test failed"
            + (f": {_error_text(error)}" if error else f": {kernel.get('wrong')} wrong values")
            + (f" (JIT: {log})" if log else "")
        )
        return False
    return True


def _judge_quota(report: probe.Report, limit: int, errors: list[str]) -> Quota:
    alloc = report["alloc"]
    allocated = alloc.get("allocated") if alloc is not None else None
    error = alloc.get("error") if alloc is not None else None
    hit = allocated == limit and error is not None and error["rc"] == OUT_OF_MEMORY
    if not hit:
        stop = _error_text(error) if error else "no error"
        errors.append(f"quota {limit}: allocated {allocated}, then {stop}")
    if not report["preload"]["mapped"]:
        errors.append("the quota library is not loaded in the container")
    totals = [device.get("total_memory") for device in report["cuda"]["devices"]]
    if totals and totals[0] != limit:
        errors.append(f"cuDeviceTotalMem_v2 says {totals[0]}, not the quota {limit}")
    return {"limit": limit, "allocated": allocated, "hit": hit}
