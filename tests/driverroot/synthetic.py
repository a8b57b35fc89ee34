"""A synthetic NVIDIA driver installation: what a real driver (580.95.05, x86_64, the Debian/Ubuntu
multiarch layout) puts on a node, laid out under a test directory, with no GPU and no mounts.

Three trees, as ``nvidia-ctk cdi generate --driver-root --dev-root`` and our own discovery see them:

- the driver root: the ``compute`` and ``utility`` libraries in ``usr/lib/x86_64-linux-gnu`` as
  ``lib<x>.so.<version>`` files with their SONAME links and the development links the driver
  installs, the binaries in ``usr/bin``, the GSP firmware, the persistenced socket (a bound unix
  socket), ``etc/ld.so.cache`` (the host's ``ldconfig -r``), optionally the MPS pipe directory and
  CUDA forward-compat libraries. The project's fake
  ``libcuda.so.1`` and ``libnvidia-ml.so.1`` (``make -C preload``) are installed *as* the driver's
  ``libcuda.so.<version>`` and ``libnvidia-ml.so.<version>``; the other libraries are empty ELF
  shared objects carrying the real SONAME (the toolkit reads SONAMEs to decide the links).
- the dev root: ``dev/nvidiactl``, ``dev/nvidia<minor>``, ``dev/nvidia-uvm(-tools)``,
  ``dev/nvidia-modeset`` and ``dev/nvidia-caps/nvidia-cap<N>``, real character devices (mknod:
  needs CAP_MKNOD).
- the proc root (what ``/proc`` holds): ``driver/nvidia/version``, ``driver/nvidia/gpus/<bus
  id>/information``, ``devices``, ``driver/nvidia/capabilities/...`` and
  ``driver/nvidia-caps/mig-minors``.

`create` is a function of its parameters only and returns a `SyntheticRoot` naming everything it
made; ``shutil.rmtree`` of the base directory removes it all. The libraries are chosen from what the
toolkit mounts (``pkg/nvcdi/driver-nvml.go`` globs ``*.so.<version>`` in the library directory, plus
``libnvidia-nvvm70.so.*``); ``libnvidia-sandboxutils`` is left out on purpose, because the toolkit
would dlopen it and prefer it over NVML.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pathlib
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence

DEFAULT_DRIVER_VERSION = "580.95.05"
DEFAULT_CUDA_VERSION = "13.0"
LIBRARY_DIR = "usr/lib/x86_64-linux-gnu"
COMPAT_DIR = "usr/local/cuda/compat"

FRONTEND_MAJOR = 195
"""The major of /dev/nvidia*, fixed by the driver; nvidiactl is minor 255, nvidia-modeset 254."""
UVM_MAJOR = 510
"""Dynamic on a real node (read from /proc/devices); a made-up, plausible value here."""
CAPS_MAJOR = 511
"""The nvidia-caps major, dynamic like UVM_MAJOR."""

_GIS_PER_GPU = 15
_CIS_PER_GI = 8

# (library, SONAME suffix: a number for lib<x>.so.<n>, None for the full version, dev link .so)
_LIBRARIES: tuple[tuple[str, str | None, bool], ...] = (
    ("libcuda", "1", True),
    ("libcudadebugger", "1", False),
    ("libnvidia-ml", "1", True),
    ("libnvidia-cfg", "1", True),
    ("libnvidia-ptxjitcompiler", "1", True),
    ("libnvidia-nvvm", "4", True),
    ("libnvidia-opencl", "1", False),
    ("libnvidia-allocator", "1", True),
    ("libnvidia-gpucomp", None, False),
    ("libnvidia-pkcs11", None, False),
    ("libnvidia-pkcs11-openssl3", None, False),
)
_LEGACY_NVVM = "libnvidia-nvvm70.so.4"
_FAKES = {"libcuda": "libcuda.so.1", "libnvidia-ml": "libnvidia-ml.so.1"}
_COMPAT_LIBRARIES = ("libcuda", "libcudadebugger", "libnvidia-nvvm", "libnvidia-ptxjitcompiler")
BINARIES = (
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
)
FIRMWARE = ("gsp_ga10x.bin", "gsp_tu10x.bin")


@dataclasses.dataclass(frozen=True)
class Library:
    file: pathlib.Path
    """The real file, ``lib<x>.so.<version>`` (host path)."""
    soname: str
    links: tuple[pathlib.Path, ...]
    """The symlinks made for it: the SONAME link (``libcuda.so.1``), then the dev link (``.so``)."""


@dataclasses.dataclass(frozen=True)
class DeviceNode:
    path: pathlib.Path
    """Host path, under the dev root."""
    major: int
    minor: int


@dataclasses.dataclass(frozen=True)
class MigInstance:
    """A MIG compute instance a caller asks for: GPU minor, GPU-instance ID, compute-instance ID."""

    gpu: int
    gi: int
    ci: int

    @property
    def gi_minor(self) -> int:
        """The nvidia-caps minor of ``gpu<g>/gi<i>/access`` (the driver's fixed numbering)."""
        return 3 + self.gpu * _GIS_PER_GPU * (1 + _CIS_PER_GI) + self.gi * (1 + _CIS_PER_GI)

    @property
    def ci_minor(self) -> int:
        """The nvidia-caps minor of ``gpu<g>/gi<i>/ci<c>/access``."""
        return self.gi_minor + 1 + self.ci


@dataclasses.dataclass(frozen=True)
class Gpu:
    minor: int
    uuid: str
    pci_bus_id: str
    """As in /proc/driver/nvidia/gpus: ``0000:10:00.0``."""
    node: DeviceNode


@dataclasses.dataclass(frozen=True)
class SyntheticRoot:
    driver_root: pathlib.Path
    dev_root: pathlib.Path
    """The root where ``dev/`` lives (``nvidia-ctk --dev-root``)."""
    proc_root: pathlib.Path
    """What ``/proc`` is for this node."""
    driver_version: str
    cuda_version: str
    """The CUDA version the driver supports, ``13.0``."""
    library_dir: pathlib.Path
    libraries: tuple[Library, ...]
    binaries: tuple[pathlib.Path, ...]
    firmware: tuple[pathlib.Path, ...]
    sockets: tuple[pathlib.Path, ...]
    mps_pipe_dir: pathlib.Path | None
    ld_cache: pathlib.Path | None
    """``etc/ld.so.cache`` of the driver root, listing the library directory."""
    compat_libraries: tuple[Library, ...]
    """The CUDA forward-compat libraries in usr/local/cuda/compat (empty unless asked for)."""
    gpus: tuple[Gpu, ...]
    control_nodes: tuple[DeviceNode, ...]
    """nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset."""
    mig_instances: tuple[MigInstance, ...]
    mig_nodes: tuple[DeviceNode, ...]
    """nvidia-cap1 (config), nvidia-cap2 (monitor), then each instance's GI and CI access node."""
    proc_files: tuple[pathlib.Path, ...]

    def container_path(self, host_path: pathlib.Path) -> str:
        """Where a file of the driver or dev root appears on the node (``/usr/lib/...``)."""
        for root in (self.driver_root, self.dev_root):
            if host_path.is_relative_to(root):
                return "/" + host_path.relative_to(root).as_posix()
        raise ValueError(f"{host_path} is in neither root")

    def fake_nvml_environment(self) -> dict[str, str]:
        """The environment that makes the fake libnvidia-ml describe these GPUs."""
        return {
            "FAKE_GPU_UUIDS": ",".join(g.uuid for g in self.gpus),
            "FAKE_GPU_MINORS": ",".join(str(g.minor) for g in self.gpus),
            "FAKE_GPU_PCI_BUS_IDS": ",".join(g.pci_bus_id for g in self.gpus),
            "FAKE_DRIVER_VERSION": self.driver_version,
            "FAKE_CUDA_DRIVER_VERSION": _cuda_number(self.cuda_version),
        }


def create(
    base: pathlib.Path,
    *,
    fakes: pathlib.Path,
    gpu_minors: Sequence[int] = (0,),
    mig: Sequence[MigInstance] = (),
    driver_version: str = DEFAULT_DRIVER_VERSION,
    cuda_version: str = DEFAULT_CUDA_VERSION,
    compat_version: str | None = None,
    mps_pipe_dir: bool = False,
    ld_cache: bool = True,
) -> SyntheticRoot:
    """Lays the three trees out under ``base`` (``driver/``, ``dev-root/``, ``proc/``).

    ``fakes`` is the directory holding the fake libcuda.so.1 and libnvidia-ml.so.1;
    ``compat_version`` (a driver version newer than ``driver_version``) adds the forward-compat
    libraries; ``ld_cache`` runs the host's ``ldconfig -r`` (a chroot) for ``etc/ld.so.cache``."""
    unknown = sorted({m.gpu for m in mig} - set(gpu_minors))
    if unknown:
        raise ValueError(f"MIG instances on GPUs that are not there: {unknown}")
    driver, dev, proc = base / "driver", base / "dev-root", base / "proc"
    library_dir = driver / LIBRARY_DIR
    gpus = tuple(_gpu(dev, minor) for minor in gpu_minors)
    libraries = _install_libraries(library_dir, fakes, driver_version)
    return SyntheticRoot(
        driver_root=driver,
        dev_root=dev,
        proc_root=proc,
        driver_version=driver_version,
        cuda_version=cuda_version,
        library_dir=library_dir,
        libraries=libraries,
        binaries=tuple(_executable(driver / "usr/bin" / name) for name in BINARIES),
        firmware=_firmware(driver / "lib/firmware/nvidia" / driver_version),
        sockets=(_bound_socket(driver / "run/nvidia-persistenced/socket"),),
        mps_pipe_dir=_directory(driver / "tmp/nvidia-mps") if mps_pipe_dir else None,
        ld_cache=_ld_cache(driver) if ld_cache else None,
        compat_libraries=_compat(driver / COMPAT_DIR, fakes, compat_version),
        gpus=gpus,
        control_nodes=_control_nodes(dev),
        mig_instances=tuple(mig),
        mig_nodes=_mig_nodes(dev, mig),
        proc_files=_proc(proc, driver_version, gpus, mig),
    )


def _install_libraries(
    directory: pathlib.Path, fakes: pathlib.Path, version: str
) -> tuple[Library, ...]:
    directory.mkdir(parents=True)
    made = []
    for name, suffix, dev_link in _LIBRARIES:
        soname = f"{name}.so.{suffix or version}"
        source = fakes / _FAKES[name] if name in _FAKES else _stub(soname)
        made.append(_library(directory, f"{name}.so.{version}", soname, source, dev_link=dev_link))
    made.append(
        _library(directory, _LEGACY_NVVM, _LEGACY_NVVM, _stub(_LEGACY_NVVM), dev_link=False)
    )
    return tuple(made)


def _compat(
    directory: pathlib.Path, fakes: pathlib.Path, version: str | None
) -> tuple[Library, ...]:
    if version is None:
        return ()
    directory.mkdir(parents=True)
    made = []
    for name, suffix, _ in _LIBRARIES:
        if name in _COMPAT_LIBRARIES:
            soname = f"{name}.so.{suffix}"
            source = fakes / _FAKES[name] if name in _FAKES else _stub(soname)
            made.append(_library(directory, f"{name}.so.{version}", soname, source, dev_link=False))
    return tuple(made)


def _library(
    directory: pathlib.Path, filename: str, soname: str, source: pathlib.Path, *, dev_link: bool
) -> Library:
    file = directory / filename
    file.write_bytes(source.read_bytes())
    file.chmod(0o755)
    links = []
    if soname != filename:
        links.append(_symlink(directory / soname, filename))
    if dev_link:
        links.append(_symlink(directory / (soname.partition(".so")[0] + ".so"), soname))
    return Library(file=file, soname=soname, links=tuple(links))


def _ld_cache(driver_root: pathlib.Path) -> pathlib.Path:
    # -X: the links are there already, ldconfig must not add its own.
    (driver_root / "etc").mkdir(exist_ok=True)
    subprocess.run(["ldconfig", "-X", "-r", str(driver_root)], check=True, capture_output=True)
    return driver_root / "etc/ld.so.cache"


def _symlink(path: pathlib.Path, target: str) -> pathlib.Path:
    path.symlink_to(target)
    return path


def _executable(path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n# synthetic {path.name}\nexit 0\n")
    path.chmod(0o755)
    return path


def _firmware(directory: pathlib.Path) -> tuple[pathlib.Path, ...]:
    directory.mkdir(parents=True)
    for name in FIRMWARE:
        (directory / name).write_bytes(b"\x7fGSP synthetic firmware\n")
    return tuple(directory / name for name in FIRMWARE)


def _directory(path: pathlib.Path) -> pathlib.Path:
    path.mkdir(parents=True)
    return path


def _bound_socket(path: pathlib.Path) -> pathlib.Path:
    """A unix socket file, as the daemon leaves it. Bound through /proc/self/fd so that a long
    test path does not hit the 108-byte limit of a socket address."""
    path.parent.mkdir(parents=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(f"/proc/self/fd/{directory}/{path.name}")
    finally:
        os.close(directory)
    return path


def _node(path: pathlib.Path, major: int, minor: int, mode: int = 0o666) -> DeviceNode:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, mode | stat.S_IFCHR, os.makedev(major, minor))
    path.chmod(mode)  # mknod applies the umask
    return DeviceNode(path=path, major=major, minor=minor)


def _gpu(dev_root: pathlib.Path, minor: int) -> Gpu:
    return Gpu(
        minor=minor,
        uuid=f"GPU-5d4e3f2a-0000-4000-8000-{minor:012x}",
        pci_bus_id=f"0000:{0x10 + minor:02x}:00.0",
        node=_node(dev_root / f"dev/nvidia{minor}", FRONTEND_MAJOR, minor),
    )


def _control_nodes(dev_root: pathlib.Path) -> tuple[DeviceNode, ...]:
    dev = dev_root / "dev"
    return (
        _node(dev / "nvidiactl", FRONTEND_MAJOR, 255),
        _node(dev / "nvidia-uvm", UVM_MAJOR, 0),
        _node(dev / "nvidia-uvm-tools", UVM_MAJOR, 1),
        _node(dev / "nvidia-modeset", FRONTEND_MAJOR, 254),
    )


def _mig_nodes(dev_root: pathlib.Path, mig: Sequence[MigInstance]) -> tuple[DeviceNode, ...]:
    caps = dev_root / "dev/nvidia-caps"
    nodes = [
        _node(caps / "nvidia-cap1", CAPS_MAJOR, 1, 0o400),
        _node(caps / "nvidia-cap2", CAPS_MAJOR, 2, 0o444),
    ]
    for minor in dict.fromkeys(m for i in mig for m in (i.gi_minor, i.ci_minor)):
        nodes.append(_node(caps / f"nvidia-cap{minor}", CAPS_MAJOR, minor, 0o444))
    return tuple(nodes)


def _proc(
    proc: pathlib.Path, version: str, gpus: Sequence[Gpu], mig: Sequence[MigInstance]
) -> tuple[pathlib.Path, ...]:
    files: dict[str, str] = {
        "driver/nvidia/version": (
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  "
            "Tue Sep 23 09:55:41 UTC 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
        ),
        "devices": _proc_devices(version),
        "driver/nvidia/capabilities/mig/config": _capability(1, 0o400),
        "driver/nvidia/capabilities/mig/monitor": _capability(2, 0o444),
        "driver/nvidia-caps/mig-minors": _mig_minors(gpus),
    }
    for gpu in gpus:
        files[f"driver/nvidia/gpus/{gpu.pci_bus_id}/information"] = _information(gpu)
    for instance in mig:
        gi = f"driver/nvidia/capabilities/gpu{instance.gpu}/mig/gi{instance.gi}"
        files[f"{gi}/access"] = _capability(instance.gi_minor, 0o444)
        files[f"{gi}/ci{instance.ci}/access"] = _capability(instance.ci_minor, 0o444)
    for relative, text in files.items():
        (proc / relative).parent.mkdir(parents=True, exist_ok=True)
        (proc / relative).write_text(text)
    return tuple(proc / relative for relative in files)


def _proc_devices(version: str) -> str:
    # Drivers from 550.40 on call the frontend "nvidia"; older ones "nvidia-frontend".
    frontend = "nvidia" if _version_tuple(version) >= (550, 40) else "nvidia-frontend"
    return (
        "Character devices:\n  1 mem\n  4 /dev/vc/0\n  4 tty\n  5 /dev/tty\n 10 misc\n"
        f"{FRONTEND_MAJOR} {frontend}\n{FRONTEND_MAJOR} nvidia-modeset\n"
        f"{UVM_MAJOR} nvidia-uvm\n{CAPS_MAJOR} nvidia-caps\n\nBlock devices:\n  7 loop\n  8 sd\n"
    )


def _capability(minor: int, mode: int) -> str:
    return f"DeviceFileMinor: {minor}\nDeviceFileMode: {mode}\nDeviceFileModify: 1\n"


def _mig_minors(gpus: Sequence[Gpu]) -> str:
    lines = ["config 1", "monitor 2"]
    for gpu in gpus:
        for gi in range(_GIS_PER_GPU):
            first = MigInstance(gpu.minor, gi, 0)
            lines.append(f"gpu{gpu.minor}/gi{gi}/access {first.gi_minor}")
            lines += [
                f"gpu{gpu.minor}/gi{gi}/ci{ci}/access {first.gi_minor + 1 + ci}"
                for ci in range(_CIS_PER_GI)
            ]
    return "\n".join(lines) + "\n"


def _information(gpu: Gpu) -> str:
    return (
        "Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t\t 0\n"
        f"GPU UUID: \t {gpu.uuid}\nVideo BIOS: \t 92.00.36.00.01\nBus Type: \t PCIe\n"
        f"DMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t {gpu.pci_bus_id}\n"
        f"Device Minor: \t {gpu.minor}\nGPU Excluded:\t No\n"
    )


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _cuda_number(version: str) -> str:
    """``13.0`` as NVML reports it from nvmlSystemGetCudaDriverVersion: 13000."""
    major, minor = _version_tuple(version)[:2]
    return str(major * 1000 + minor * 10)


def _cache_root() -> pathlib.Path:
    explicit = os.environ.get("GPU_DRA_CACHE")
    if explicit:
        return pathlib.Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(xdg) / "gpu-dra-driver"


def _stub(soname: str) -> pathlib.Path:
    """An empty ELF shared object with this SONAME, compiled once and cached (atomic publish)."""
    directory = _cache_root() / "synthetic-driver-stubs"
    final = directory / soname
    if final.exists():
        return final
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".stub.")
        os.close(handle)
        try:
            subprocess.run(
                [
                    "gcc",
                    "-shared",
                    "-nostdlib",
                    f"-Wl,-soname,{soname}",
                    "-o",
                    temporary,
                    "-x",
                    "c",
                    "/dev/null",
                ],
                check=True,
                capture_output=True,
            )
            os.replace(temporary, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    return final
