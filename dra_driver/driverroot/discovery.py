"""Find what a CUDA container needs from the driver root: libraries, binaries, firmware, sockets.

The rules are the NVIDIA Container Toolkit's (``nvidia-ctk cdi generate``, and before it
``libnvidia-container``), so that a container gets from us what it would get from NVIDIA's runtime:

- the **driver version** is the kernel module's (``<proc>/driver/nvidia/version``); a driver root
  whose ``libcuda.so.<version>`` does not match it is incomplete (a driver upgrade half done, or the
  wrong root), and so is one without ``libcuda``;
- **libraries** are the ``lib*.so.<version>`` files in ``libcuda``'s folder and its ``vdpau``
  subfolder, chosen by capability (`CAPABILITY_LIBRARIES`; ``all`` takes every one, as
  ``nvidia-ctk`` does), plus the legacy ``libnvidia-nvvm70.so.*``; each is mounted as the file it
  is, and its symbolic links in that folder (``libcuda.so.1 -> libcuda.so.580.95.05``,
  ``libcuda.so -> libcuda.so.1``) become links the ``create-symlinks`` hook makes in the container;
  ``libcuda.so`` is always linked (build systems and JIT compilers look for it);
- **binaries** (`CAPABILITY_BINARIES`) come from the usual ``PATH`` folders of the root;
- **firmware**: ``lib/firmware/nvidia/<version>/gsp*.bin`` (GSP GPUs need the matching file);
- **IPC sockets** that exist: ``nvidia-persistenced`` and ``nvidia-fabricmanager``. A node-wide
  MPS daemon's ``/tmp/nvidia-mps`` is deliberately left out: our claims get their own daemon's
  pipe directory (``isolation.mps``) and must never join one that the driver does not manage.

Everything here reads files only. `DriverFiles.fingerprint` is what `caching` compares to notice a
driver upgrade without walking the root again.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable

from dra_driver.driverroot import errors, roots

CAPABILITIES = ("compute", "utility", "video", "graphics")
"""Driver capabilities as NVIDIA's runtime names them; ``all`` means every versioned library."""
DEFAULT_CAPABILITIES = ("compute", "utility")

CAPABILITY_LIBRARIES: dict[str, tuple[str, ...]] = {
    "utility": ("libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq"),
    "compute": (
        "libcuda",
        "libcudadebugger",
        "libnvidia-opencl",
        "libnvidia-gpucomp",
        "libnvidia-ptxjitcompiler",
        "libnvidia-fatbinaryloader",
        "libnvidia-allocator",
        "libnvidia-compiler",
        "libnvidia-pkcs11",
        "libnvidia-pkcs11-openssl3",
        "libnvidia-nvvm",
    ),
    "video": ("libvdpau_nvidia", "libnvidia-encode", "libnvidia-opticalflow", "libnvcuvid"),
    "graphics": (
        "libnvidia-eglcore",
        "libnvidia-glcore",
        "libnvidia-tls",
        "libnvidia-glsi",
        "libnvidia-fbc",
        "libnvidia-ifr",
        "libnvidia-rtcore",
        "libnvoptix",
        "libGLX_nvidia",
        "libEGL_nvidia",
        "libGLESv2_nvidia",
        "libGLESv1_CM_nvidia",
        "libnvidia-glvkspirv",
        "libnvidia-cbl",
    ),
}
"""Library names (before ``.so``) per capability, from libnvidia-container's lists."""

CAPABILITY_BINARIES: dict[str, tuple[str, ...]] = {
    "utility": ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced"),
    "compute": (
        "nvidia-cuda-mps-control",
        "nvidia-cuda-mps-server",
        "nvidia-imex",
        "nvidia-imex-ctl",
    ),
}

LIBRARY_FOLDERS = (
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/nvidia/current",
    "/usr/lib/aarch64-linux-gnu/nvidia/current",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/lib",
)
"""Where drivers install ``libcuda``, searched before the folders of ``etc/ld.so.conf``."""
BINARY_FOLDERS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
FIRMWARE_FOLDERS = ("/lib/firmware/updates", "/lib/firmware")
SOCKETS = (
    "/run/nvidia-persistenced/socket",
    "/var/run/nvidia-persistenced/socket",
    "/run/nvidia-fabricmanager/socket",
    "/var/run/nvidia-fabricmanager/socket",
)
LEGACY_LIBRARIES = ("libnvidia-nvvm70.so.*",)

_VERSION = re.compile(r"Kernel Module(?: for [^ ]+)?\s+([0-9]+(?:\.[0-9]+)+)")


@dataclasses.dataclass(frozen=True)
class Link:
    """A symbolic link the ``create-symlinks`` hook makes in the container."""

    target: str
    """What the link points to, as the driver root has it (usually a bare file name)."""
    path: str
    """The link, absolute, in the container."""


@dataclasses.dataclass(frozen=True)
class DriverFiles:
    """The driver's user-space files, as paths inside the driver root (= paths in a container)."""

    version: str
    library_folders: tuple[str, ...]
    """The folders of ``libcuda`` (``NVIDIA_CTK_LIBCUDA_DIR``)."""
    libraries: tuple[str, ...]
    links: tuple[Link, ...]
    binaries: tuple[tuple[str, str], ...]
    """(path in the container, the file it is inside the root): binaries may be links."""
    firmware: tuple[str, ...]
    sockets: tuple[str, ...]
    fingerprint: tuple[object, ...]
    """What changes when the driver is upgraded (see `fingerprint`)."""

    @property
    def ldcache_folders(self) -> tuple[str, ...]:
        """The folders of the mounted libraries, in first-seen order (``update-ldcache``)."""
        return tuple(dict.fromkeys(os.path.dirname(path) for path in self.libraries))


def kernel_module_version(proc: os.PathLike[str]) -> str:
    """The loaded kernel module's version, from ``<proc>/driver/nvidia/version``."""
    path = os.path.join(proc, "driver/nvidia/version")
    try:
        with open(path) as file:
            text = file.read()
    except OSError as err:
        raise errors.IncompleteDriverRootError(
            f"cannot read the NVIDIA kernel module's version from {path}: {err.strerror} "
            "(is the driver loaded?)"
        ) from err
    found = _VERSION.search(text)
    if found is None:
        raise errors.IncompleteDriverRootError(f"{path} names no kernel module version")
    return found.group(1)


def fingerprint(
    root: roots.Root, proc: os.PathLike[str], folders: Iterable[str] = ()
) -> tuple[object, ...]:
    """A cheap signature of the driver installation: a few ``stat`` calls and one small read.

    A driver upgrade replaces the kernel module (a new version string) and the files in the
    library, binary and firmware folders (their modification times change); `folders` adds the
    library folders discovery found elsewhere (``etc/ld.so.conf``).
    """
    try:
        with open(os.path.join(proc, "driver/nvidia/version"), "rb") as file:
            module: object = file.read()
    except OSError:
        module = None
    stamps: list[object] = [module]
    for folder in dict.fromkeys(
        (*LIBRARY_FOLDERS, *BINARY_FOLDERS, "/lib/firmware/nvidia", *folders)
    ):
        try:
            status = os.stat(root.seen(folder))
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_ino, status.st_mtime_ns))
    return tuple(stamps)


def discover(
    root: roots.Root, proc: os.PathLike[str], *, capabilities: Iterable[str] = DEFAULT_CAPABILITIES
) -> DriverFiles:
    """Everything a container of the driver's `capabilities` needs; raises if the root lacks it."""
    wanted = _capabilities(capabilities)
    version = kernel_module_version(proc)
    libcuda = _find_libcuda(root, version)
    folder = os.path.dirname(libcuda)
    stamp = fingerprint(root, proc, [folder])
    libraries = _libraries(root, folder, version, wanted)
    files = DriverFiles(
        version=version,
        library_folders=(folder,),
        libraries=libraries,
        links=_links(root, libraries),
        binaries=_binaries(root, wanted),
        firmware=_firmware(root, version),
        sockets=tuple(path for path in SOCKETS if root.exists(path)),
        fingerprint=stamp,
    )
    # Files read during an upgrade may be half old, half new: such a result must not be cached.
    if kernel_module_version(proc) != version or fingerprint(root, proc, [folder]) != stamp:
        raise errors.IncompleteDriverRootError(
            f"the driver under {root.host} changed while it was read (an upgrade?); "
            "the next prepare looks again"
        )
    return files


def _capabilities(capabilities: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(capabilities)
    unknown = wanted - {*CAPABILITIES, "all"}
    if unknown:
        raise ValueError(
            f"unknown driver capabilities {sorted(unknown)}: use {', '.join(CAPABILITIES)} or all"
        )
    return frozenset(CAPABILITIES) | {"all"} if "all" in wanted else wanted


def _find_libcuda(root: roots.Root, version: str) -> str:
    name = f"libcuda.so.{version}"
    folders = [*LIBRARY_FOLDERS, *_conf_folders(root)]
    for folder in folders:
        candidate = f"{folder}/{name}"
        if os.path.isfile(root.seen(root.resolve(candidate))):
            return root.resolve(candidate)
    others = sorted(
        f"{folder}/{entry}"
        for folder in folders
        for entry in _listing(root, folder)
        if entry.startswith("libcuda.so.") and entry.count(".") > 2
    )
    found = f" (found {', '.join(others)}: a driver upgrade in progress?)" if others else ""
    raise errors.IncompleteDriverRootError(
        f"the driver root {root.host} (read at {root.view}) has no {name} for the loaded kernel "
        f"module {version} in {', '.join(folders)}{found}"
    )


def _libraries(
    root: roots.Root, folder: str, version: str, wanted: frozenset[str]
) -> tuple[str, ...]:
    names = {name for capability in wanted for name in CAPABILITY_LIBRARIES.get(capability, ())}
    found: list[str] = []
    for directory in (folder, f"{folder}/vdpau"):
        for entry in sorted(_listing(root, directory)):
            path = f"{directory}/{entry}"
            if os.path.islink(root.seen(path)) or not os.path.isfile(root.seen(path)):
                continue
            versioned = entry.endswith(f".so.{version}") and (
                "all" in wanted or entry.split(".so")[0] in names
            )
            legacy = "compute" in wanted and any(
                fnmatch.fnmatch(entry, pattern) for pattern in LEGACY_LIBRARIES
            )
            if versioned or legacy:
                found.append(path)
    for required, capability in (("libcuda", "compute"), ("libnvidia-ml", "utility")):
        if capability in wanted and not any(
            os.path.basename(path).startswith(f"{required}.so.") for path in found
        ):
            raise errors.IncompleteDriverRootError(
                f"the driver root {root.host} has no {required}.so.{version} in {folder}"
            )
    return tuple(found)


def _links(root: roots.Root, libraries: tuple[str, ...]) -> tuple[Link, ...]:
    """The symbolic links of each library's folder that lead to it, one hop each."""
    mounted = set(libraries)
    links: list[Link] = []
    for folder in dict.fromkeys(os.path.dirname(path) for path in libraries):
        for entry in sorted(_listing(root, folder)):
            path = f"{folder}/{entry}"
            try:
                target = os.readlink(root.seen(path))
            except OSError:
                continue
            if root.resolve(path) in mounted:
                links.append(Link(target=target, path=path))
    for library in libraries:  # `libcuda.so`, even where the driver installed no such link
        if os.path.basename(library).startswith("libcuda.so."):
            dev_link = Link(target="libcuda.so.1", path=f"{os.path.dirname(library)}/libcuda.so")
            if all(link.path != dev_link.path for link in links):
                links.append(dev_link)
    return tuple(links)


def _binaries(root: roots.Root, wanted: frozenset[str]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for capability, names in CAPABILITY_BINARIES.items():  # NVIDIA's order: utility first
        if capability not in wanted:
            continue
        for name in names:
            for folder in BINARY_FOLDERS:
                path = f"{folder}/{name}"
                real = root.resolve(path)
                if os.path.isfile(root.seen(real)) and os.access(root.seen(real), os.X_OK):
                    found.append((path, real))
                    break
    return tuple(found)


def _firmware(root: roots.Root, version: str) -> tuple[str, ...]:
    for folder in FIRMWARE_FOLDERS:
        directory = f"{folder}/nvidia/{version}"
        files = [
            f"{directory}/{entry}"
            for entry in sorted(_listing(root, directory))
            if fnmatch.fnmatch(entry, "gsp*.bin")
        ]
        if files:
            return tuple(files)
    return ()


def _listing(root: roots.Root, folder: str) -> list[str]:
    try:
        return os.listdir(root.seen(root.resolve(folder)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as err:
        raise errors.IncompleteDriverRootError(
            f"cannot list {root.on_host(folder)}: {err.strerror}"
        ) from err


def _conf_folders(root: roots.Root) -> list[str]:
    """The library folders named by the root's ``etc/ld.so.conf`` (and its ``include`` files)."""
    folders: list[str] = []
    pending = ["/etc/ld.so.conf"]
    seen: set[str] = set()
    while pending:
        conf = pending.pop(0)
        if conf in seen:
            continue
        seen.add(conf)
        try:
            with open(root.seen(conf)) as file:
                lines = file.read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "include":
                for pattern in words[1:]:
                    directory, glob = os.path.split(pattern)
                    pending.extend(
                        f"{directory}/{entry}"
                        for entry in sorted(_listing(root, directory))
                        if fnmatch.fnmatch(entry, glob)
                    )
            elif words[0].startswith("/") and words[0] not in folders:
                folders.append(words[0])
    return [folder for folder in folders if folder not in LIBRARY_FOLDERS]
