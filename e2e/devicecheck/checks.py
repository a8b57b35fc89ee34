"""The claims the device check makes and how the probe's reports of each are judged.

One claim at a time (a node with one GPU cannot hold a whole-GPU claim beside a share or a MIG
device): a whole GPU, a share with a memory quota, and a MIG device. Whole GPU and share must
work; MIG is reported but never fails the check, since a MIG mode change needs a GPU reset that a
machine (a VM with a passed-through GPU, say) may refuse. Each claim's pod runs the probe as
container ``main``; the share's pod also runs a ``holder`` container on the same claim, which keeps
up to `HOLDER_MAX` of the quota while ``main`` allocates until refused. Both hold their memory
until the pod is deleted (``--hold``). The quota library charges each process of the claim its
allocations plus, at its first one, a context reserve (``context_reserve_bytes`` of the claim's
``quota.conf``, per GPU model); when the claim's containers share one account, what ``main`` was
left when refused (cuMemGetInfo, less than one step) plus both allocations and a reserve per
process that allocated is the quota to the byte, whatever order the two ran in. Judging is pure:
reports in, a verdict with every problem named out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypedDict

from e2e import probe

GIB = 1 << 30
OUT_OF_MEMORY = 2
SHARE_QUOTA = 4 * GIB
HOLDER_MAX = 1 * GIB
"""Less than the quota: the holder never fills it alone, so ``main``'s kernel test finds room."""
MAIN = "main"
HOLDER = "holder"


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    """of the claim and its pod"""
    device_class: str
    capacity: Mapping[str, str] | None
    probe_args: tuple[str, ...]
    """of the probe in container ``main``"""
    required: bool
    """a failure fails the whole check"""
    quota_bytes: int | None = None
    """the share's memory limit, which the two containers must fill together to the byte"""
    holder_args: tuple[str, ...] | None = None
    """of the probe in container ``holder`` (the share's second container), None: no holder"""

    @property
    def containers(self) -> dict[str, tuple[str, ...]]:
        """Container name to probe arguments, in the pod's order: ``holder`` first, so that it
        usually allocates before ``main`` starts (the judging does not depend on it)."""
        found = {HOLDER: self.holder_args} if self.holder_args is not None else {}
        return found | {MAIN: self.probe_args}


CHECKS = (
    Check("gpu", "gpu.dra.dev", None, ("--kernel", "--hold"), required=True),
    Check(
        "share",
        "shared.gpu.dra.dev",
        {"memory": "4Gi"},
        ("--kernel", "--alloc-step", "256Mi", "--alloc-max", "5Gi", "--hold"),
        required=True,
        quota_bytes=SHARE_QUOTA,
        holder_args=("--alloc-step", "256Mi", "--alloc-max", "1Gi", "--hold"),
    ),
    Check("mig", "mig.gpu.dra.dev", None, ("--kernel", "--hold"), required=False),
)


class Quota(TypedDict):
    limit: int
    allocated: int | None
    """by ``main``, which allocates until refused"""
    held: int | None
    """by ``holder``, on the same claim at the same time"""
    context_reserve: int
    """charged once per process that allocated (the claim's ``context_reserve_bytes``)"""
    left: int | None
    """what ``main``'s cuMemGetInfo said was free after it was refused"""
    hit: bool
    """``main`` was refused with CUDA_ERROR_OUT_OF_MEMORY with less than one step left, and left,
    allocations and reserves add up to the limit: one account for both containers"""


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


def judge(
    check: Check,
    *,
    device: str,
    report: probe.Report,
    holder: probe.Report | None = None,
    context_reserve: int = 0,
    real_gpus: bool,
) -> ClaimResult:
    """Everything the probes saw that is wrong for `check`, in one verdict; `holder` is the
    report of the share's second container, `context_reserve` the claim's per-process charge."""
    result = _result(check, device=device, errors=[], skipped=None)
    errors = result["errors"]
    result["uuid_expected"], result["uuid_seen"] = _judge_container(
        report, real_gpus=real_gpus, errors=errors
    )
    if holder is not None:
        held_errors: list[str] = []
        _judge_container(holder, real_gpus=real_gpus, errors=held_errors)
        errors += [f"{HOLDER}: {error}" for error in held_errors]
    if "--kernel" in check.probe_args:
        result["kernel_ok"] = _judge_kernel(report["kernel"], real_gpus=real_gpus, errors=errors)
    if check.quota_bytes is not None:
        result["quota"] = _judge_quota(
            report, holder, limit=check.quota_bytes, reserve=context_reserve, errors=errors
        )
    result["ok"] = not errors
    return result


def _judge_container(
    report: probe.Report, *, real_gpus: bool, errors: list[str]
) -> tuple[str | None, str | None]:
    """One container's view of the claim: one CUDA device, the claim's; its (expected, seen)
    UUIDs."""
    cuda = report["cuda"]
    if cuda["error"] is not None:
        errors.append(f"CUDA: {_error_text(cuda['error'])}")
    if cuda["device_count"] not in (None, 1):
        errors.append(f"the container sees {cuda['device_count']} CUDA devices, not 1")
    expected = _uuid_from_env(report["env"], errors)
    seen = cuda["devices"][0].get("uuid") if cuda["devices"] else None
    if expected and _hex(seen) != _hex(expected):
        errors.append(f"CUDA sees {seen}, the claim is {expected}")
    if real_gpus:
        _judge_nodes(report["devices"], errors)
    return expected, seen


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


def _judge_quota(
    report: probe.Report,
    holder: probe.Report | None,
    *,
    limit: int,
    reserve: int,
    errors: list[str],
) -> Quota:
    allocated, error = _allocation(report)
    held, held_error = _allocation(holder) if holder is not None else (0, None)
    left = _left(report)
    processes = sum(1 for amount in (allocated, held) if amount)
    charged = (allocated or 0) + (held or 0) + processes * reserve
    step = (report["alloc"] or {}).get("step")
    hit = (
        error is not None
        and error["rc"] == OUT_OF_MEMORY
        and left is not None
        and step is not None
        and left < step
        and charged + left == limit
    )
    if not hit:
        stop = _error_text(error) if error else "no error"
        errors.append(
            f"quota {limit}: allocated {allocated} beside {held} held and {processes} context "
            f"reserve(s) of {reserve}, then {stop} with {left} left"
        )
    if held_error is not None and held_error["rc"] != OUT_OF_MEMORY:
        errors.append(f"{HOLDER}: allocation failed: {_error_text(held_error)}")
    for name, seen in ((MAIN, report), (HOLDER, holder)):
        if seen is None:
            continue
        if not seen["preload"]["mapped"]:
            errors.append(f"the quota library is not loaded in container {name}")
        totals = [device.get("total_memory") for device in seen["cuda"]["devices"]]
        if totals and totals[0] != limit:
            errors.append(f"{name}: cuDeviceTotalMem_v2 says {totals[0]}, not the quota {limit}")
    return {
        "limit": limit,
        "allocated": allocated,
        "held": held,
        "context_reserve": reserve,
        "left": left,
        "hit": hit,
    }


def _left(report: probe.Report) -> int | None:
    """The free memory cuMemGetInfo reported after the allocation test (the quota's view)."""
    info = (report["alloc"] or {}).get("memory_info")
    if info is None or "call" in info:  # absent, or the call's error
        return None
    return info["free"]


def _allocation(report: probe.Report) -> tuple[int | None, probe.Error | None]:
    """What the probe's allocation test got, and the error that stopped it."""
    alloc = report["alloc"]
    if alloc is None:
        return None, None
    return alloc.get("allocated"), alloc.get("error")
