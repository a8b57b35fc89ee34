"""Small driver roots laid out file by file for the unit tests (no device nodes: existence is all
the discovery checks; the synthetic root with real nodes is `tests.driverroot.synthetic`)."""

from __future__ import annotations

import os
import pathlib

VERSION = "580.95.05"
LIBS = "/usr/lib/x86_64-linux-gnu"
PROC_VERSION = (
    f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {VERSION}  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Thu Sep 18 21:23:53 UTC 2025\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)


def file(root: pathlib.Path, path: str, content: bytes = b"", *, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    target.chmod(mode)


def link(root: pathlib.Path, path: str, target: str) -> None:
    at = root / path.lstrip("/")
    at.parent.mkdir(parents=True, exist_ok=True)
    if at.is_symlink():  # an upgrade re-points the link
        at.unlink()
    os.symlink(target, at)


def library(root: pathlib.Path, name: str, *, version: str = VERSION, folder: str = LIBS) -> None:
    """``<name>.so.<version>`` with its soname link ``<name>.so.1`` and dev link ``<name>.so``."""
    file(root, f"{folder}/{name}.so.{version}", b"\x7fELF")
    link(root, f"{folder}/{name}.so.1", f"{name}.so.{version}")
    link(root, f"{folder}/{name}.so", f"{name}.so.1")


def driver(root: pathlib.Path, *, version: str = VERSION) -> None:
    """A small but complete driver: compute and utility libraries, a video and a graphics one,
    binaries, firmware, the persistenced socket's path, the device nodes."""
    for name in ("libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler", "libnvidia-nvvm"):
        library(root, name, version=version)
    library(root, "libnvidia-encode", version=version)
    library(root, "libnvidia-glcore", version=version)
    file(root, f"{LIBS}/libnvidia-nvvm70.so.4", b"\x7fELF")
    file(root, f"{LIBS}/vdpau/libvdpau_nvidia.so.{version}", b"\x7fELF")
    for name in ("nvidia-smi", "nvidia-debugdump", "nvidia-cuda-mps-control"):
        file(root, f"/usr/bin/{name}", b"#!/bin/sh\n", mode=0o755)
    file(root, f"/lib/firmware/nvidia/{version}/gsp_ga10x.bin")
    file(root, f"/lib/firmware/nvidia/{version}/gsp_tu10x.bin")
    file(root, "/run/nvidia-persistenced/socket")
    for node in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1"):
        file(root, f"/dev/{node}")


def proc(root: pathlib.Path, *, version: str = VERSION, caps_major: int | None = 237) -> None:
    file(root, "/driver/nvidia/version", PROC_VERSION.replace(VERSION, version).encode())
    devices = "Character devices:\n  1 mem\n195 nvidia-frontend\n511 nvidia-uvm\n"
    if caps_major is not None:
        devices += f"{caps_major} nvidia-caps\n"
    file(root, "/devices", (devices + "\nBlock devices:\n  8 sd\n").encode())


def mig_capability(
    proc_root: pathlib.Path, *, gpu_minor: int, gi: int, ci: int, gi_minor: int, ci_minor: int
) -> None:
    base = f"/driver/nvidia/capabilities/gpu{gpu_minor}/mig/gi{gi}"
    body = "DeviceFileMinor: {}\nDeviceFileMode: 292\nDeviceFileModify: 1\n"
    file(proc_root, f"{base}/access", body.format(gi_minor).encode())
    file(proc_root, f"{base}/ci{ci}/access", body.format(ci_minor).encode())
