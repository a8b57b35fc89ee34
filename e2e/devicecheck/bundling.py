"""``prepare``: everything the GPU machine needs, built here and packed into ``.device/`` (one
git-ignored folder the device tool carries beside the working tree), because that machine has no
network and no Go toolchain.

The archive, one xz-compressed tar, unpacks to::

    bin/        kube-apiserver etcd kube-scheduler kube-controller-manager fake-kubelet
                nvidia-cdi-hook containerd containerd-shim-runc-v2 ctr runc
    image.oci.tar   the test image with the probe (e2e.harness.images: this machine's dash,
                coreutils, ldconfig and glibc), built here so that nothing of the GPU machine's
                own system goes into it
    image.json  the image's name and digest, as containerd imports it (`image`)
    libgpuquota.so
    site/       the plugin's Python dependencies installed for CPython 3.12 (the GPU image's
                python3; PYTHONPATH=site): unpacked sources compress far better than wheels

The device tool carries at most 64 MiB per call *with* the working tree, so the archive is one
solid xz stream with a dictionary larger than any binary (the Kubernetes binaries share most of
their code, and a solid stream stores it about once), and it is cut into pieces that each fit
beside the tree: ``.device/piece-1/bundle.xz.part``, ``piece-2``, … . One piece travels per call;
``hack/device-check.sh stash`` keeps a piece in ``/tmp`` on the GPU machine, which keeps its files
while it stays warm (30 s after a call), and ``run`` joins them. ``.device/manifest.json`` lists
every file's size, the archive's, the tree's, the pieces, and the oldest glibc the binaries that
run on the GPU machine's own system (runc, nvidia-cdi-hook, the quota library inside containers
uses the image's glibc) need.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import tomllib
from typing import TypedDict

from e2e import probe
from e2e.harness import binaries, containerd, images
from tests.preload import building

REPO = pathlib.Path(__file__).resolve().parents[2]
DEVICE_DIR = REPO / ".device"
PIECE = "bundle.xz.part"
BUDGET = 64 << 20
"""What the device tool carries in one call: the working tree plus the carried paths."""
_MARGIN = 2 << 20
"""Room left in each call for files others add to the tree meanwhile."""
CONTROL_PLANE = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager")
IMAGE_ARCHIVE = "image.oci.tar"
IMAGE_NAME = "image.json"
WHEEL_PYTHON = "3.12"
WHEEL_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


class Part(TypedDict):
    path: str
    bytes: int


class Manifest(TypedDict):
    parts: list[Part]
    unpacked_bytes: int
    archive_bytes: int
    tree_bytes: int
    """the working tree that travels too (tracked and untracked-not-ignored files)"""
    budget_bytes: int
    pieces: list[str]
    """carry one per call: ``.device/manifest.json`` and ``.device/<piece>``"""
    glibc_floor: str
    """the newest GLIBC_x.y symbol version the bundle's binaries need on the GPU machine"""
    image: str


def prepare(*, out: pathlib.Path = DEVICE_DIR) -> Manifest:
    with tempfile.TemporaryDirectory(prefix="gdra-bundle-") as scratch:
        staging = pathlib.Path(scratch) / "bundle"
        _stage(staging)
        floor = _glibc_floor(staging)  # before the long packing: a failure here comes early
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        archive = pathlib.Path(scratch) / "bundle.tar.xz"
        _pack(staging, archive)
        tree = tree_bytes()
        pieces = _cut(archive, out, size=BUDGET - tree - _MARGIN)
        parts = [
            Part(path=str(path.relative_to(staging)), bytes=path.stat().st_size)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        ]
        manifest = Manifest(
            parts=parts,
            unpacked_bytes=sum(part["bytes"] for part in parts),
            archive_bytes=archive.stat().st_size,
            tree_bytes=tree,
            budget_bytes=BUDGET,
            pieces=pieces,
            glibc_floor=".".join(map(str, floor)),
            image=image(staging).ref,
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _cut(archive: pathlib.Path, out: pathlib.Path, *, size: int) -> list[str]:
    """Cuts `archive` into ``out/piece-<n>/`` files of at most `size` bytes; their names."""
    if size < (4 << 20):
        raise RuntimeError(f"the working tree leaves only {size} bytes per device call")
    names: list[str] = []
    with archive.open("rb") as source:
        while chunk := source.read(size):
            name = f"piece-{len(names) + 1}"
            (out / name).mkdir()
            (out / name / PIECE).write_bytes(chunk)
            names.append(name)
    return names


def _stage(staging: pathlib.Path) -> None:
    bin_dir = staging / "bin"
    bin_dir.mkdir(parents=True)
    cluster = binaries.ensure_built()
    for name in (*CONTROL_PLANE, "fake-kubelet"):
        _copy_stripped(cluster / name, bin_dir / name)
    toolkit = _built_dir([str(REPO / "hack" / "build-nvidia-toolkit.sh")])
    _copy_stripped(toolkit / "nvidia-cdi-hook", bin_dir / "nvidia-cdi-hook")
    runtime = containerd.ensure_built()
    for name in containerd.NAMES:
        _copy_stripped(runtime / name, bin_dir / name)
    built = images.build(probe.build())
    shutil.copyfile(built.archive, staging / IMAGE_ARCHIVE)
    named = {"ref": built.ref, "digest": built.digest}
    (staging / IMAGE_NAME).write_text(json.dumps(named) + "\n")
    _copy_stripped(building.build(building.Flavour.PLAIN).library, staging / "libgpuquota.so")
    _install_site(staging / "site")


def image(bundle: pathlib.Path) -> images.Image:
    """The test image of an unpacked bundle, for `containerd.Containerd`."""
    name = json.loads((bundle / IMAGE_NAME).read_text())
    return images.Image(archive=bundle / IMAGE_ARCHIVE, ref=name["ref"], digest=name["digest"])


def _glibc_floor(staging: pathlib.Path) -> tuple[int, int]:
    """What the dynamically linked programs run on the GPU machine's own system need (the static
    ones, containerd and ctr, need nothing)."""
    programs = [path for path in (staging / "bin").iterdir() if _is_dynamic_elf(path)]
    return max((probe.glibc_floor(path) for path in programs), default=(2, 0))


_PT_INTERP = 3


def _is_dynamic_elf(path: pathlib.Path) -> bool:
    """An ELF64 little-endian program with a program interpreter (the dynamic loader)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        return False
    (table,) = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    types = (struct.unpack_from("<I", data, table + k * size)[0] for k in range(count))
    return _PT_INTERP in types


def _built_dir(script: list[str]) -> pathlib.Path:
    """Runs a build script that prints its output directory last."""
    done = subprocess.run(["bash", *script], stdout=subprocess.PIPE, text=True, check=True)
    return pathlib.Path(done.stdout.strip().splitlines()[-1])


def _copy_stripped(source: pathlib.Path, target: pathlib.Path) -> None:
    shutil.copy2(source, target)
    target.chmod(0o755)
    _strip(target)


def _strip(path: pathlib.Path) -> None:
    # Go binaries built with -s -w have nothing left to strip; C ones lose their debug info.
    subprocess.run(["strip", "--strip-unneeded", str(path)], capture_output=True, check=False)


def requirements() -> list[str]:
    """The plugin's runtime dependencies (pyproject.toml), NVML's included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["nvml"]]


# Not used by the plugin and large: the Kubernetes client's asyncio twin (41 of its 75 MB).
_PRUNED = ("kubernetes/aio",)


def _install_site(target: pathlib.Path) -> None:
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--only-binary=:all:",
            "--python-version",
            WHEEL_PYTHON,
            "--implementation",
            "cp",
            *platforms,
            "--target",
            str(target),
            *requirements(),
        ],
        check=True,
    )
    for pruned in _PRUNED:
        shutil.rmtree(target / pruned)
    for library in target.rglob("*.so"):
        _strip(library)


def _pack(staging: pathlib.Path, archive: pathlib.Path) -> None:
    """One solid xz stream (single-threaded: threads would cut it into independent blocks)."""
    tar = subprocess.Popen(
        ["tar", "-C", str(staging), "--sort=name", "-cf", "-", "."], stdout=subprocess.PIPE
    )
    with archive.open("wb") as output:
        subprocess.run(
            ["xz", "-T1", "--lzma2=preset=9e,dict=512MiB", "-c"],
            stdin=tar.stdout,
            stdout=output,
            check=True,
        )
    if tar.wait() != 0:
        raise RuntimeError("tar failed")


def tree_bytes() -> int:
    """Bytes of the working tree the device tool sends (tracked and untracked-not-ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    paths = (REPO / name for name in listed.decode().split("\0") if name)
    return sum(path.stat().st_size for path in paths if path.is_file() and not path.is_symlink())


__all__ = ["DEVICE_DIR", "Manifest", "image", "prepare", "requirements", "tree_bytes"]
