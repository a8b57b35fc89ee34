"""The container probe (``probe.c`` and its sections, README.md): building it, and reading the
one JSON line it prints, "what the container saw".

Used by the probe's own tests (``tests/probe``), the real-container scenarios, and the GPU
machine's check (`e2e.devicecheck`). The report's shape is typed here (`Report`); the C side
writes every member, null where a step failed or was not asked for.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import re
import subprocess
from typing import TypedDict, cast

__all__ = ["Report", "build", "first_report", "glibc_floor"]

SOURCE = pathlib.Path(__file__).resolve().parent
REPORT_VERSION = 1


class Error(TypedDict):
    call: str
    rc: int | None
    """The CUresult; null for failures that are not one (dlopen, a missing entry point)."""
    name: str | None
    message: str | None


class Header(TypedDict):
    version: int
    pid: int
    uid: int
    args: list[str]


class Node(TypedDict):
    path: str
    type: str
    """c, b, l (symlink), f, ?"""
    major: int
    minor: int
    mode: str
    """permission bits, octal, e.g. "0666" """


class Mount(TypedDict):
    path: str
    root: str
    options: str
    ro: bool
    fstype: str
    source: str
    super_options: str


class LdCache(TypedDict):
    source: str | None
    """the ldconfig that was run, or the cache file read"""
    libraries: dict[str, list[str]]
    """libcuda*, libnvidia*, libnvcuvid*, libgpuquota*: name → paths, the loader's choice first"""
    error: str | None


class MemoryInfo(TypedDict):
    free: int
    total: int


class Device(TypedDict, total=False):
    ordinal: int
    name: str | None
    uuid: str | None
    """GPU-… (MIG-… when the device's name says MIG)"""
    compute_capability: str | None
    total_memory: int | None
    memory_info: MemoryInfo | Error
    error: Error | None


class Cuda(TypedDict):
    library: str | None
    """where libcuda.so.1 was loaded from"""
    alloc_entry: str | None
    """the library whose cuMemAlloc_v2 the program got: libgpuquota.so when it intercepts"""
    driver_version: int | None
    device_count: int | None
    devices: list[Device]
    error: Error | None


class Kernel(TypedDict, total=False):
    skipped: str
    """why nothing ran (the fake libcuda has no module or launch calls); the only member then"""
    device: int
    ptx_target: str
    elements: int
    wrong: int
    ok: bool
    error: Error | None
    jit_log: str


class Alloc(TypedDict, total=False):
    device: int
    step: int
    max: int
    allocated: int
    allocations: int
    error: Error | None
    """the first failing call: rc 2 (CUDA_ERROR_OUT_OF_MEMORY) at a share's quota"""
    memory_info: MemoryInfo | Error


class Preload(TypedDict):
    file: str | None
    """/etc/ld.so.preload's content"""
    mapped: bool
    """libgpuquota.so is loaded in the probe"""
    library: str | None


class Report(TypedDict):
    probe: Header
    env: dict[str, str]
    devices: list[Node]
    mounts: list[Mount]
    ldcache: LdCache
    cuda: Cuda
    kernel: Kernel | None
    alloc: Alloc | None
    preload: Preload


def output_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("PROBE_BUILD") or SOURCE / "build")


def build() -> pathlib.Path:
    """Runs ``make -C e2e/probe`` (incremental, under a lock: test runs may overlap); returns the
    program's path. Raises with make's output on failure."""
    root = output_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".make.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["make", "-C", str(SOURCE), "-s", f"PROBE_BUILD={root}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"make -C {SOURCE} failed:\n{result.stdout}{result.stderr}")
    return root / "probe"


def first_report(stdout: str) -> Report:
    """The first line of `stdout` that is a JSON object (what a container's log is read for)."""
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return cast(Report, value)
    raise ValueError(f"no JSON object line in the output:\n{stdout[-2000:]}")


def glibc_floor(binary: pathlib.Path) -> tuple[int, int]:
    """The newest GLIBC_x.y symbol version `binary` needs (objdump -T): the oldest glibc it runs
    on."""
    listing = subprocess.run(
        ["objdump", "-T", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    versions = {(int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", listing)}
    return max(versions, default=(2, 0))
