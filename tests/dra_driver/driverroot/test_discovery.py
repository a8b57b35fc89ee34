"""What discovery finds in a driver root, and how it refuses an incomplete one.

Covers: a driver changed while it is read is refused (never a mix of two versions); the libraries of the compute and utility capabilities (and of ``all``), their links
(soname and dev links as one hop each, ``libcuda.so`` always), the legacy NVVM library, the binaries
found on the root's PATH (a link resolved inside the root), the GSP firmware of the version, the
sockets that exist; a root seen under another path than the host's; library folders from
``etc/ld.so.conf``; refusals: no kernel module version, no libcuda of that version (naming what was
found), no libnvidia-ml, unknown capabilities.
"""

from __future__ import annotations

import pathlib

import pytest

from dra_driver.driverroot import discovery, errors, roots
from tests.dra_driver.driverroot import layouts

LIBS = layouts.LIBS
V = layouts.VERSION


@pytest.fixture
def driver_root(tmp_path: pathlib.Path) -> roots.Root:
    layouts.driver(tmp_path / "root")
    return roots.Root.at("/run/nvidia/driver", str(tmp_path / "root"))


@pytest.fixture
def proc(tmp_path: pathlib.Path) -> pathlib.Path:
    layouts.proc(tmp_path / "proc")
    return tmp_path / "proc"


def test_compute_and_utility_get_their_libraries_binaries_firmware_and_sockets(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    found = discovery.discover(driver_root, proc)

    assert found.version == V
    assert found.library_folders == (LIBS,)
    assert found.libraries == (
        f"{LIBS}/libcuda.so.{V}",
        f"{LIBS}/libnvidia-ml.so.{V}",
        f"{LIBS}/libnvidia-nvvm.so.{V}",
        f"{LIBS}/libnvidia-nvvm70.so.4",
        f"{LIBS}/libnvidia-ptxjitcompiler.so.{V}",
    )
    assert found.binaries == (
        ("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi"),
        ("/usr/bin/nvidia-debugdump", "/usr/bin/nvidia-debugdump"),
        ("/usr/bin/nvidia-cuda-mps-control", "/usr/bin/nvidia-cuda-mps-control"),
    )
    assert found.firmware == (
        f"/lib/firmware/nvidia/{V}/gsp_ga10x.bin",
        f"/lib/firmware/nvidia/{V}/gsp_tu10x.bin",
    )
    assert found.sockets == ("/run/nvidia-persistenced/socket",)
    assert found.ldcache_folders == (LIBS,)


def test_links_are_one_hop_each_and_libcuda_so_is_always_there(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    (driver_root.view / LIBS.lstrip("/") / "libcuda.so").unlink()

    links = {(link.target, link.path) for link in discovery.discover(driver_root, proc).links}

    assert (f"libcuda.so.{V}", f"{LIBS}/libcuda.so.1") in links
    assert ("libcuda.so.1", f"{LIBS}/libcuda.so") in links  # made although the root lacks it
    assert ("libnvidia-ml.so.1", f"{LIBS}/libnvidia-ml.so") in links
    assert (f"libnvidia-ml.so.{V}", f"{LIBS}/libnvidia-ml.so.1") in links
    assert not any("encode" in path for _, path in links)  # not a mounted library


def test_all_takes_every_library_of_the_version(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    found = discovery.discover(driver_root, proc, capabilities=["all"])

    names = {pathlib.PurePath(path).name for path in found.libraries}
    assert {f"libnvidia-encode.so.{V}", f"libnvidia-glcore.so.{V}"} <= names
    assert f"libvdpau_nvidia.so.{V}" in names  # the vdpau subfolder too


def test_video_adds_its_libraries_only(driver_root: roots.Root, proc: pathlib.Path) -> None:
    found = discovery.discover(driver_root, proc, capabilities=["compute", "utility", "video"])

    names = {pathlib.PurePath(path).name for path in found.libraries}
    assert f"libnvidia-encode.so.{V}" in names
    assert f"libnvidia-glcore.so.{V}" not in names


def test_a_binary_that_is_a_link_is_resolved_inside_the_root(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    smi = driver_root.view / "usr/bin/nvidia-smi"
    smi.unlink()
    layouts.file(driver_root.view, "/opt/nvidia/bin/nvidia-smi", b"#!/bin/sh\n", mode=0o755)
    layouts.link(driver_root.view, "/usr/bin/nvidia-smi", "/opt/nvidia/bin/nvidia-smi")

    found = discovery.discover(driver_root, proc)

    assert ("/usr/bin/nvidia-smi", "/opt/nvidia/bin/nvidia-smi") in found.binaries


def test_library_folders_come_from_ld_so_conf_too(
    tmp_path: pathlib.Path, proc: pathlib.Path
) -> None:
    root = tmp_path / "other"
    folder = "/opt/nvidia/lib64"
    for name in ("libcuda", "libnvidia-ml"):
        layouts.library(root, name, folder=folder)
    layouts.file(root, "/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
    layouts.file(root, "/etc/ld.so.conf.d/nvidia.conf", f"# the driver\n{folder}\n".encode())

    found = discovery.discover(roots.Root.at("/", str(root)), proc)

    assert found.library_folders == (folder,)
    assert found.binaries == ()
    assert found.firmware == ()
    assert found.sockets == ()


def test_a_root_without_the_kernel_modules_libcuda_is_incomplete_and_says_what_it_found(
    tmp_path: pathlib.Path, driver_root: roots.Root
) -> None:
    layouts.proc(tmp_path / "newer", version="590.10.01")

    with pytest.raises(errors.IncompleteDriverRootError) as raised:
        discovery.discover(driver_root, tmp_path / "newer")

    message = str(raised.value)
    assert "no libcuda.so.590.10.01" in message
    assert "/run/nvidia/driver" in message
    assert f"{LIBS}/libcuda.so.{V}" in message
    assert "upgrade" in message


def test_a_root_without_libnvidia_ml_is_incomplete(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    (driver_root.view / LIBS.lstrip("/") / f"libnvidia-ml.so.{V}").unlink()

    with pytest.raises(errors.IncompleteDriverRootError, match=f"no libnvidia-ml.so.{V}"):
        discovery.discover(driver_root, proc)
    discovery.discover(driver_root, proc, capabilities=["compute"])  # utility not asked for


def test_no_loaded_kernel_module_is_incomplete(
    tmp_path: pathlib.Path, driver_root: roots.Root
) -> None:
    with pytest.raises(errors.IncompleteDriverRootError, match="is the driver loaded"):
        discovery.discover(driver_root, tmp_path / "empty-proc")


def test_unknown_capabilities_are_refused(driver_root: roots.Root, proc: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="unknown driver capabilities"):
        discovery.discover(driver_root, proc, capabilities=["compute", "computer"])


def test_the_fingerprint_changes_with_an_upgrade_and_not_otherwise(
    driver_root: roots.Root, proc: pathlib.Path
) -> None:
    before = discovery.fingerprint(driver_root, proc)
    assert discovery.fingerprint(driver_root, proc) == before

    layouts.library(driver_root.view, "libcuda", version="590.10.01")

    assert discovery.fingerprint(driver_root, proc) != before


def test_a_driver_upgraded_while_it_is_read_is_refused(
    driver_root: roots.Root, proc: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = discovery._binaries

    def upgrading(root: roots.Root, wanted: frozenset[str]) -> tuple[tuple[str, str], ...]:
        layouts.library(root.view, "libcuda", version="590.10.01")
        layouts.proc(proc, version="590.10.01")
        return real(root, wanted)

    monkeypatch.setattr(discovery, "_binaries", upgrading)

    with pytest.raises(errors.IncompleteDriverRootError, match="changed while it was read"):
        discovery.discover(driver_root, proc)
