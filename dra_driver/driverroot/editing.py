"""The driver part of a claim's CDI spec: mounts, hooks and environment from `DriverFiles`.

The shape is ``nvidia-ctk cdi generate``'s (the conformance test compares the two field by field):

- every library, binary and firmware file is bind-mounted read-only at its path in the driver root
  (``ro, nosuid, nodev, rbind, rprivate``), IPC sockets read-write and ``noexec``; mounts are
  ordered by depth, then path, so that a folder is always mounted before anything inside it;
- ``createContainer`` hooks run ``nvidia-cdi-hook`` (installed on the host by `hooks`), in this
  order: ``create-symlinks`` (the libraries' links), ``enable-cuda-compat`` (switches to the CUDA
  forward-compatibility libraries of the image, where it has newer ones than the host driver),
  ``update-ldcache`` (runs the image's ``ldconfig`` over the library folders, so that
  ``ldconfig -p`` and ``dlopen("libcuda.so.1")`` find the driver), and
  ``disable-device-node-modification`` (CUDA in the container must not try to create nodes);
- ``NVIDIA_VISIBLE_DEVICES=void``, so that the NVIDIA runtime, where it is the node's default,
  adds no GPU of its own, with ``/dev/null`` at ``/var/run/nvidia-container-devices/void`` saying
  the same to a runtime configured to take its device list from volume mounts instead of the
  environment; and ``NVIDIA_CTK_LIBCUDA_DIR`` for the hooks.
"""

from __future__ import annotations

import os

from dra_driver.cdi import spec
from dra_driver.driverroot import discovery, roots

READ_ONLY = ("ro", "nosuid", "nodev", "rbind", "rprivate")
SOCKET = ("nosuid", "nodev", "rbind", "rprivate", "noexec")
HOOK_ENV = ("NVIDIA_CTK_DEBUG=false",)
CREATE_CONTAINER = "createContainer"
VOID_DEVICE_LIST = "/var/run/nvidia-container-devices/void"


def driver_edits(
    files: discovery.DriverFiles, root: roots.Root, *, hook_path: str
) -> spec.ContainerEdits:
    """The mounts, hooks and environment of the driver, for a container of any device."""
    mounts = [spec.Mount(root.on_host(path), path, options=READ_ONLY) for path in files.libraries]
    mounts += [
        spec.Mount(root.on_host(file), path, options=READ_ONLY) for path, file in files.binaries
    ]
    mounts += [spec.Mount(root.on_host(path), path, options=READ_ONLY) for path in files.firmware]
    mounts += [spec.Mount(root.on_host(path), path, options=SOCKET) for path in files.sockets]
    mounts.append(
        spec.Mount("/dev/null", VOID_DEVICE_LIST, options=("ro", "nosuid", "nodev", "bind"))
    )
    mounts.sort(key=lambda mount: (mount.container_path.count("/"), mount.container_path))
    return spec.ContainerEdits(
        env=(
            "NVIDIA_VISIBLE_DEVICES=void",
            f"NVIDIA_CTK_LIBCUDA_DIR={os.pathsep.join(files.library_folders)}",
        ),
        mounts=tuple(mounts),
        hooks=hooks(files, hook_path=hook_path),
    )


def hooks(files: discovery.DriverFiles, *, hook_path: str) -> tuple[spec.Hook, ...]:
    links = [arg for link in files.links for arg in ("--link", f"{link.target}::{link.path}")]
    folders = [arg for folder in files.ldcache_folders for arg in ("--folder", folder)]
    commands = [
        ("create-symlinks", links),
        ("enable-cuda-compat", [f"--host-driver-version={files.version}"]),
        ("update-ldcache", folders),
        ("disable-device-node-modification", []),
    ]
    argv0 = os.path.basename(hook_path)
    return tuple(
        spec.Hook(CREATE_CONTAINER, hook_path, args=(argv0, name, *args), env=HOOK_ENV)
        for name, args in commands
        if args or name not in ("create-symlinks", "update-ldcache")
    )
