"""The driver part of a spec: mounts by host path, the hooks in order, the environment.

Covers: libraries, binaries (a link mounted from the file it leads to), firmware read-only, sockets
read-write and noexec, all with host paths under the driver root; ``create-symlinks``,
``enable-cuda-compat``, ``update-ldcache``, ``disable-device-node-modification`` at
createContainer with ``argv[0]`` the hook's name; ``NVIDIA_VISIBLE_DEVICES=void``; no
``create-symlinks`` hook when there is no link to make.
"""

from __future__ import annotations

import dataclasses
import pathlib

from dra_driver.cdi import spec
from dra_driver.driverroot import discovery, editing, roots
from tests.dra_driver.driverroot import layouts

HOOK = "/var/lib/kubelet/plugins/gpu.dra.dev/bin/nvidia-cdi-hook"
V = layouts.VERSION
LIBS = layouts.LIBS
HOST = "/run/nvidia/driver"


def _edits(tmp_path: pathlib.Path) -> tuple[discovery.DriverFiles, spec.ContainerEdits]:
    layouts.driver(tmp_path / "root")
    layouts.proc(tmp_path / "proc")
    root = roots.Root.at(HOST, str(tmp_path / "root"))
    files = discovery.discover(root, tmp_path / "proc")
    return files, editing.driver_edits(files, root, hook_path=HOOK)


def test_mounts_carry_host_paths_and_the_right_options(tmp_path: pathlib.Path) -> None:
    _, edits = _edits(tmp_path)
    by_path = {mount.container_path: mount for mount in edits.mounts}

    cuda = by_path[f"{LIBS}/libcuda.so.{V}"]
    assert cuda.host_path == f"{HOST}{LIBS}/libcuda.so.{V}"
    assert cuda.options == ("ro", "nosuid", "nodev", "rbind", "rprivate")
    assert by_path["/usr/bin/nvidia-smi"].host_path == f"{HOST}/usr/bin/nvidia-smi"
    assert by_path[f"/lib/firmware/nvidia/{V}/gsp_ga10x.bin"].options == editing.READ_ONLY
    socket = by_path["/run/nvidia-persistenced/socket"]
    assert socket.options == ("nosuid", "nodev", "rbind", "rprivate", "noexec")
    assert edits.env == ("NVIDIA_VISIBLE_DEVICES=void", f"NVIDIA_CTK_LIBCUDA_DIR={LIBS}")
    assert edits.device_nodes == ()


def test_hooks_run_nvidia_cdi_hook_at_create_container_in_order(tmp_path: pathlib.Path) -> None:
    _, edits = _edits(tmp_path)

    assert [hook.args[1] for hook in edits.hooks] == [
        "create-symlinks",
        "enable-cuda-compat",
        "update-ldcache",
        "disable-device-node-modification",
    ]
    assert {(hook.hook_name, hook.path, hook.args[0]) for hook in edits.hooks} == {
        ("createContainer", HOOK, "nvidia-cdi-hook")
    }
    symlinks, compat, ldcache, _ = edits.hooks
    assert f"libcuda.so.{V}::{LIBS}/libcuda.so.1" in symlinks.args
    assert set(symlinks.args[2::2]) == {"--link"}
    assert compat.args[2:] == (f"--host-driver-version={V}",)
    assert ldcache.args[2:] == ("--folder", LIBS)
    assert all(hook.env == ("NVIDIA_CTK_DEBUG=false",) for hook in edits.hooks)


def test_no_links_no_create_symlinks_hook(tmp_path: pathlib.Path) -> None:
    files, _ = _edits(tmp_path)
    root = roots.Root.at(HOST, str(tmp_path / "root"))

    edits = editing.driver_edits(dataclasses.replace(files, links=()), root, hook_path=HOOK)

    assert next(hook.args[1] for hook in edits.hooks) == "enable-cuda-compat"
