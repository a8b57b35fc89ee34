"""The probe inside a private mount namespace dressed as a container would be by our CDI spec,
with the fake libcuda installed as the *driver's* library (found through the loader's cache, not
``LD_LIBRARY_PATH``) and the quota library loaded through ``/etc/ld.so.preload``.

Covers: device nodes under /dev/nvidia* and /dev/nvidia-caps with type, numbers and mode; a
read-only bind mount reported read-only; the ld cache from ldconfig -p and read from the cache
file directly (same libraries); the driver found through the cache; ``/etc/ld.so.preload``'s
content, the library mapped, and a share stopping at its quota with no LD_PRELOAD in sight (and no
variable naming its config: the claim's directory is where the plugin mounts it).
Needs root and ``unshare``; /etc is overlaid, so nothing on the host changes.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess

import pytest

from e2e import probe
from tests.preload import claims
from tests.probe.conftest import UUIDS, Prober

OOM = 2


def _namespaces_work() -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _namespaces_work(), reason="needs root and unshare --mount")


def _as_container(
    prober: Prober, scratch: pathlib.Path, *, claim: claims.Claim, args: list[str]
) -> probe.Report:
    upper, work, readonly = scratch / "upper", scratch / "work", scratch / "readonly"
    for path in (upper, work, readonly):
        path.mkdir(parents=True)
    (readonly / "marker").write_text("x")
    quote = shlex.quote
    inside = str(pathlib.PurePosixPath(claim.config_inside).parent)
    script = [
        "set -e",
        "mount --make-rprivate /",
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc",
        # the driver's libraries, known to the loader by its cache (as update-ldcache leaves it)
        f"echo {quote(str(prober.build.fakes))} > /etc/ld.so.conf.d/zz-fake-driver.conf",
        "ldconfig",
        "mkdir /etc/probe-ro",
        f"mount --bind {quote(str(readonly))} /etc/probe-ro",
        "mount -o remount,bind,ro /etc/probe-ro",
        "mount -t tmpfs -o mode=755 tmpfs /dev",
        "mknod -m 666 /dev/null c 1 3",
        "mknod -m 666 /dev/nvidiactl c 195 255",
        "mknod -m 666 /dev/nvidia0 c 195 0",
        "mkdir /dev/nvidia-caps",
        "mknod -m 444 /dev/nvidia-caps/nvidia-cap1 c 234 1",
        f"echo {quote(str(prober.build.library))} > /etc/ld.so.preload",
        # the claim's directory where the plugin mounts it (the only place the library looks)
        "mount -t tmpfs -o mode=755 tmpfs /var/run",
        f"mkdir -p {quote(inside)}",
        f"mount --bind {quote(str(claim.directory))} {quote(inside)}",
        f"exec {quote(str(prober.program))} {' '.join(map(quote, args))}",
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "FAKE_GPU_UUIDS": UUIDS[0],
        "GPU_DRA_GPU_0_UUID": UUIDS[0],
    }
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "\n".join(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return probe.first_report(done.stdout)


@pytest.fixture
def report(prober: Prober, tmp_path: pathlib.Path) -> probe.Report:
    claim = claims.write(tmp_path / "claim", {UUIDS[0]: 1 << 30})
    return _as_container(prober, tmp_path / "ns", claim=claim, args=["--alloc-step", "256Mi"])


def test_device_nodes_are_listed_with_numbers_and_mode(report: probe.Report) -> None:
    assert report["devices"] == [
        {"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0, "mode": "0666"},
        {"path": "/dev/nvidiactl", "type": "c", "major": 195, "minor": 255, "mode": "0666"},
        {
            "path": "/dev/nvidia-caps/nvidia-cap1",
            "type": "c",
            "major": 234,
            "minor": 1,
            "mode": "0444",
        },
    ]


def test_a_read_only_bind_mount_is_reported_read_only(report: probe.Report) -> None:
    mounts = {mount["path"]: mount for mount in report["mounts"]}
    assert mounts["/etc/probe-ro"]["ro"]
    assert "/proc" not in mounts  # what every container has is left out
    assert "/dev" not in mounts
    assert mounts["/etc"]["fstype"] == "overlay"


def test_the_driver_is_found_through_the_loader_cache(report: probe.Report, prober: Prober) -> None:
    fake_cuda = str(prober.build.fakes / "libcuda.so.1")
    assert report["ldcache"]["error"] is None
    assert report["ldcache"]["libraries"]["libcuda.so.1"] == [fake_cuda]
    assert report["ldcache"]["libraries"]["libnvidia-ml.so.1"] == [
        str(prober.build.fakes / "libnvidia-ml.so.1")
    ]
    assert report["cuda"]["library"] == fake_cuda
    assert "LD_LIBRARY_PATH" not in report["env"]


def test_the_quota_library_comes_from_ld_so_preload_and_holds_the_share(
    report: probe.Report, prober: Prober
) -> None:
    assert report["preload"]["file"] == f"{prober.build.library}\n"
    assert report["preload"]["mapped"]
    assert "LD_PRELOAD" not in report["env"]
    alloc = report["alloc"]
    assert alloc is not None
    assert alloc["allocated"] == 1 << 30
    assert alloc["error"] is not None
    assert alloc["error"]["rc"] == OOM


def test_the_cache_file_read_directly_matches_ldconfig(
    prober: Prober, tmp_path: pathlib.Path
) -> None:
    cache, conf = tmp_path / "ld.so.cache", tmp_path / "ld.so.conf"
    conf.write_text(f"{prober.build.fakes}\n")
    subprocess.run(["ldconfig", "-C", str(cache), "-f", str(conf)], check=True)
    listed = subprocess.run(
        ["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True, check=True
    ).stdout
    report, _ = prober.run("--ldcache-file", str(cache), env=prober.environment())
    assert report["ldcache"]["source"] == str(cache)
    libraries = report["ldcache"]["libraries"]
    assert libraries["libcuda.so.1"] == [str(prober.build.fakes / "libcuda.so.1")]
    for name, paths in libraries.items():
        for path in paths:
            assert f"{name} " in listed
            assert path in listed
