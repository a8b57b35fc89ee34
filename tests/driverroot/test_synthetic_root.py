"""The synthetic driver root (tests/driverroot/synthetic.py) holds what it says it holds:

- every library is a real ELF file named for the driver version whose SONAME link and dev link
  resolve to it, and libcuda/libnvidia-ml are the project's fakes;
- binaries are executable, the firmware is in the versioned directory, the persistenced socket is a
  socket, compat libraries and the MPS pipe dir only when asked for;
- device nodes are character devices with the numbers the result names (GPU minors as given, MIG
  capability minors by the driver's numbering);
- the proc files use the driver's formats (version, devices, information, capability files);
- everything goes with a plain ``shutil.rmtree``.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess

import pytest

from tests.driverroot import synthetic
from tests.preload import building

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mknod of device nodes needs root")

VERSION = synthetic.DEFAULT_DRIVER_VERSION


@pytest.fixture(scope="module")
def fakes() -> pathlib.Path:
    return building.build(building.Flavour.PLAIN).fakes


@pytest.fixture
def root(tmp_path: pathlib.Path, fakes: pathlib.Path) -> synthetic.SyntheticRoot:
    return synthetic.create(
        tmp_path / "node",
        fakes=fakes,
        gpu_minors=(0, 3),
        mig=(synthetic.MigInstance(gpu=3, gi=1, ci=0),),
    )


def _soname(path: pathlib.Path) -> str:
    dynamic = subprocess.run(
        ["readelf", "-d", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return next(line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "SONAME" in line)


def test_libraries_are_versioned_elf_files_with_their_soname(
    root: synthetic.SyntheticRoot,
) -> None:
    names = {library.file.name for library in root.libraries}
    assert f"libcuda.so.{VERSION}" in names
    assert f"libnvidia-ml.so.{VERSION}" in names
    assert f"libnvidia-ptxjitcompiler.so.{VERSION}" in names
    assert "libnvidia-nvvm70.so.4" in names
    for library in root.libraries:
        assert library.file.parent == root.library_dir
        assert library.file.read_bytes()[:4] == b"\x7fELF"
        assert not library.file.is_symlink()
        assert _soname(library.file) == library.soname


def test_soname_and_dev_links_resolve_to_the_library(root: synthetic.SyntheticRoot) -> None:
    libcuda = next(lib for lib in root.libraries if lib.soname == "libcuda.so.1")
    assert [link.name for link in libcuda.links] == ["libcuda.so.1", "libcuda.so"]
    assert os.readlink(libcuda.links[0]) == libcuda.file.name
    assert os.readlink(libcuda.links[1]) == "libcuda.so.1"
    for library in root.libraries:
        for link in library.links:
            assert link.is_symlink()
            assert link.resolve() == library.file


def test_libraries_without_a_short_soname_get_no_links(root: synthetic.SyntheticRoot) -> None:
    gpucomp = next(lib for lib in root.libraries if lib.file.name.startswith("libnvidia-gpucomp"))
    assert gpucomp.soname == gpucomp.file.name
    assert gpucomp.links == ()


def test_libcuda_and_nvml_are_the_projects_fakes(
    root: synthetic.SyntheticRoot, fakes: pathlib.Path
) -> None:
    by_soname = {lib.soname: lib.file for lib in root.libraries}
    for soname in ("libcuda.so.1", "libnvidia-ml.so.1"):
        assert by_soname[soname].read_bytes() == (fakes / soname).read_bytes()


def test_binaries_firmware_and_socket(root: synthetic.SyntheticRoot) -> None:
    assert {b.name for b in root.binaries} == set(synthetic.BINARIES)
    assert all(
        b.parent == root.driver_root / "usr/bin" and os.access(b, os.X_OK) for b in root.binaries
    )
    assert [f.relative_to(root.driver_root).as_posix() for f in root.firmware] == [
        f"lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin",
        f"lib/firmware/nvidia/{VERSION}/gsp_tu10x.bin",
    ]
    (socket,) = root.sockets
    assert root.container_path(socket) == "/run/nvidia-persistenced/socket"
    assert stat.S_ISSOCK(socket.stat().st_mode)


def test_ld_cache_lists_the_library_directory(root: synthetic.SyntheticRoot) -> None:
    assert root.ld_cache == root.driver_root / "etc/ld.so.cache"
    listed = subprocess.run(
        ["ldconfig", "-p", "-C", str(root.ld_cache)], capture_output=True, text=True, check=True
    ).stdout
    assert f"libcuda.so.1 (libc6,x86-64) => /{synthetic.LIBRARY_DIR}/libcuda.so.1" in listed


def test_optional_parts_only_when_asked(tmp_path: pathlib.Path, fakes: pathlib.Path) -> None:
    plain = synthetic.create(tmp_path / "plain", fakes=fakes, ld_cache=False)
    assert plain.compat_libraries == ()
    assert plain.mps_pipe_dir is None
    assert plain.ld_cache is None
    assert not (plain.driver_root / synthetic.COMPAT_DIR).exists()

    full = synthetic.create(
        tmp_path / "full", fakes=fakes, compat_version="580.126.09", mps_pipe_dir=True
    )
    compat_cuda = next(lib for lib in full.compat_libraries if lib.soname == "libcuda.so.1")
    assert full.container_path(compat_cuda.file) == "/usr/local/cuda/compat/libcuda.so.580.126.09"
    assert compat_cuda.links[0].resolve() == compat_cuda.file
    assert full.mps_pipe_dir is not None
    assert full.mps_pipe_dir.is_dir()


def _assert_node(node: synthetic.DeviceNode) -> None:
    status = node.path.lstat()
    assert stat.S_ISCHR(status.st_mode), node.path
    assert (os.major(status.st_rdev), os.minor(status.st_rdev)) == (node.major, node.minor)


def test_device_nodes_are_character_devices_with_their_numbers(
    root: synthetic.SyntheticRoot,
) -> None:
    assert [(g.node.path.name, g.node.minor) for g in root.gpus] == [("nvidia0", 0), ("nvidia3", 3)]
    assert {n.path.name: (n.major, n.minor) for n in root.control_nodes} == {
        "nvidiactl": (195, 255),
        "nvidia-modeset": (195, 254),
        "nvidia-uvm": (synthetic.UVM_MAJOR, 0),
        "nvidia-uvm-tools": (synthetic.UVM_MAJOR, 1),
    }
    for node in (*(g.node for g in root.gpus), *root.control_nodes, *root.mig_nodes):
        assert node.path.is_relative_to(root.dev_root / "dev")
        _assert_node(node)


def test_mig_capability_minors_follow_the_drivers_numbering(
    root: synthetic.SyntheticRoot,
) -> None:
    (instance,) = root.mig_instances
    # gpu3/gi1: 3 + 3*135 + 1*9; its ci0 is the next minor.
    assert (instance.gi_minor, instance.ci_minor) == (417, 418)
    assert [n.minor for n in root.mig_nodes] == [1, 2, 417, 418]
    assert all(n.major == synthetic.CAPS_MAJOR for n in root.mig_nodes)
    minors = (root.proc_root / "driver/nvidia-caps/mig-minors").read_text().splitlines()
    assert "gpu3/gi1/access 417" in minors
    assert "gpu3/gi1/ci0/access 418" in minors
    access = root.proc_root / "driver/nvidia/capabilities/gpu3/mig/gi1/ci0/access"
    assert access.read_text() == "DeviceFileMinor: 418\nDeviceFileMode: 292\nDeviceFileModify: 1\n"


def test_mig_instances_need_their_gpu(tmp_path: pathlib.Path, fakes: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="not there"):
        synthetic.create(tmp_path, fakes=fakes, mig=(synthetic.MigInstance(gpu=1, gi=0, ci=0),))


def test_proc_files_use_the_drivers_formats(root: synthetic.SyntheticRoot) -> None:
    version = (root.proc_root / "driver/nvidia/version").read_text()
    assert version.startswith(f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  ")
    devices = (root.proc_root / "devices").read_text().splitlines()
    assert {
        "195 nvidia",
        f"{synthetic.UVM_MAJOR} nvidia-uvm",
        f"{synthetic.CAPS_MAJOR} nvidia-caps",
    } <= set(devices)
    gpu = root.gpus[1]
    information = (root.proc_root / f"driver/nvidia/gpus/{gpu.pci_bus_id}/information").read_text()
    fields = dict(line.split(":", 1) for line in information.splitlines())
    assert fields["GPU UUID"].strip() == gpu.uuid
    assert fields["Device Minor"].strip() == "3"
    assert fields["Bus Location"].strip() == gpu.pci_bus_id
    assert all(path.is_file() for path in root.proc_files)


def test_an_old_driver_names_the_frontend_nvidia_frontend(
    tmp_path: pathlib.Path, fakes: pathlib.Path
) -> None:
    old = synthetic.create(tmp_path, fakes=fakes, driver_version="535.104.05", ld_cache=False)
    assert "195 nvidia-frontend" in (old.proc_root / "devices").read_text().splitlines()
    assert (old.library_dir / "libcuda.so.535.104.05").is_file()


def test_fake_nvml_environment_describes_the_gpus(root: synthetic.SyntheticRoot) -> None:
    assert root.fake_nvml_environment() == {
        "FAKE_GPU_UUIDS": f"{root.gpus[0].uuid},{root.gpus[1].uuid}",
        "FAKE_GPU_MINORS": "0,3",
        "FAKE_GPU_PCI_BUS_IDS": "0000:10:00.0,0000:13:00.0",
        "FAKE_DRIVER_VERSION": VERSION,
        "FAKE_CUDA_DRIVER_VERSION": "13000",
    }


def test_removed_by_a_plain_rmtree(tmp_path: pathlib.Path, fakes: pathlib.Path) -> None:
    synthetic.create(tmp_path / "node", fakes=fakes, gpu_minors=(0, 1), mps_pipe_dir=True)
    shutil.rmtree(tmp_path / "node")
    assert not (tmp_path / "node").exists()
