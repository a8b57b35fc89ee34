"""The driver's image, built here without Docker (``hack/build-image.sh``), and the plugin run from it.

Covers:
- the image holds both entry points (they run), ``nvidia-cdi-hook`` (static: it runs on any host,
  whatever its glibc), the quota library needing at most GLIBC_2.17 symbol versions, and no
  compiler, apt lists or docs; its config is the Dockerfile's last stage (labels, env, user,
  command);
- on the local control plane, the plugin started from the image in the node's real containerd as
  the chart's DaemonSet starts it (host network, privileged, the host's plugin, registry and CDI
  dirs mounted at their paths, the quota library installed by the chart's init container)
  registers with the fake kubelet, publishes the node's devices, and prepares a claim: the CDI
  spec lands in the host's CDI dir; deleting the pod unprepares it. The start time (container
  start to registration) is printed (``-s``) for docs/install.md.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from e2e.conftest import Scenario, local
from e2e.harness import containerd, driverimage, images, kube, nodeagents, objects, scraping

pytestmark = pytest.mark.e2e

GLIBC_FLOOR = (2, 17)
ENTRY_POINTS = ("gpu-dra-kubeletplugin", "gpu-dra-controller")


@pytest.fixture(scope="module")
def image() -> images.Image:
    return driverimage.build()


@pytest.fixture(scope="module")
def rootfs(image: images.Image) -> Iterator[pathlib.Path]:
    directory = pathlib.Path(tempfile.mkdtemp(prefix="gdra-image-"))
    try:
        yield driverimage.unpack(image, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _glibc_versions(binary: pathlib.Path) -> list[tuple[int, ...]]:
    dynamic = subprocess.run(
        ["objdump", "-T", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    found = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9.]+)", dynamic)}
    return sorted(found)


def _in_image(rootfs: pathlib.Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/opt/gpu-dra-driver/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    chroot = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert chroot is not None
    return subprocess.run(
        [chroot, str(rootfs), *command], capture_output=True, text=True, env=env, check=False
    )


def test_the_image_holds_the_entry_points_the_hook_and_the_library(rootfs: pathlib.Path) -> None:
    for entry in ENTRY_POINTS:
        script = rootfs / "opt/gpu-dra-driver/bin" / entry
        assert script.read_text().startswith("#!/opt/gpu-dra-driver/bin/python"), entry
        ran = _in_image(rootfs, entry, "--help")
        assert ran.returncode == 0, ran.stderr
        assert "usage" in ran.stdout.lower()
    hook = rootfs / driverimage.HOOK.lstrip("/")
    dynamic = subprocess.run(
        ["readelf", "-d", str(hook)], capture_output=True, text=True, check=False
    )
    assert "There is no dynamic section" in dynamic.stdout  # static: any host glibc runs it
    assert (
        "1.20.2"
        in subprocess.run(
            [str(hook), "--version"], capture_output=True, text=True, check=True
        ).stdout
    )
    library = rootfs / driverimage.QUOTA_LIBRARY.lstrip("/")
    versions = _glibc_versions(library)
    assert versions, "the library names glibc symbol versions"
    assert max(versions) <= GLIBC_FLOOR, versions
    needed = subprocess.run(
        ["readelf", "-d", str(library)], capture_output=True, text=True, check=True
    ).stdout
    # On glibc before 2.34, dlopen and pthread_once live in these.
    assert "[libdl.so.2]" in needed
    assert "[libpthread.so.0]" in needed


def test_the_image_holds_nothing_to_build_with(rootfs: pathlib.Path) -> None:
    for tool in ("gcc", "cc", "c++", "make", "ld", "as", "go"):
        assert not (rootfs / "usr/bin" / tool).exists(), tool
    assert not list((rootfs / "var/lib/apt/lists").glob("*Packages*"))
    assert not list((rootfs / "usr/share/man").iterdir())
    docs = [p for p in (rootfs / "usr/share/doc").rglob("*") if p.is_file()]
    assert docs
    assert {p.name for p in docs} == {"copyright"}
    venv = rootfs / "opt/gpu-dra-driver"
    assert not (venv / "bin/pip").exists()
    assert not list((venv / "lib/python3.11/site-packages").glob("pip"))
    assert (rootfs / "etc/passwd").read_text().count("nonroot:x:65532:65532:") == 1


def test_the_image_config_is_the_dockerfiles_last_stage(image: images.Image) -> None:
    stage = driverimage.dockerfile_stage()
    _, config = driverimage.manifest_and_config(image)
    settings = config["config"]
    assert isinstance(settings, dict)
    assert settings["User"] == stage["user"] == "65532:65532"
    assert settings["Cmd"] == stage["cmd"] == ["gpu-dra-controller"]
    assert settings["Labels"] == stage["labels"]
    assert settings["Labels"]["org.opencontainers.image.title"] == "gpu-dra-driver"
    env = dict(item.split("=", 1) for item in settings["Env"])
    assert env["PATH"].startswith("/opt/gpu-dra-driver/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_plugin_from_the_image_prepares_a_claim(
    scenario: Scenario, bin_dir: pathlib.Path, image: images.Image, rootfs: pathlib.Path
) -> None:
    plane = local(scenario.plane)
    work_dir = pathlib.Path(tempfile.mkdtemp(prefix="gdra-", dir="/tmp"))
    node = nodeagents.PluginNode(
        plane=plane,
        client=scenario.client,
        bin_dir=bin_dir,
        work_dir=work_dir,
        name=f"{scenario.namespace}-node-0",
        gpus="2xA100-40GB",
    )
    scenario.nodes.append(node.name)
    for directory in (node.registry_dir, node.plugin_dir, node.cdi_dir, node.records_dir):
        directory.mkdir(parents=True, exist_ok=True)
    (work_dir / "logs").mkdir()
    runtime = containerd.for_node(work_dir, node.cdi_dir)
    plugin = driverimage.PluginContainer(runtime=runtime, image=image, node=node, plane=plane)
    try:
        runtime.start()
        runtime.import_image(image)
        node.start_kubelet()
        library = plugin.install_quota_library()
        assert library.read_bytes() == (rootfs / driverimage.QUOTA_LIBRARY.lstrip("/")).read_bytes()
        started = time.monotonic()
        plugin.start(
            "--driver-name=gpu.dra.dev",
            f"--node-name={node.name}",
            f"--pod-uid={node.pod_uid}",
            "--gpus=fake:2xA100-40GB",
            f"--kubeconfig={plane.kubeconfig}",
            f"--preload-library={library}",
            f"--plugin-dir={node.plugin_dir}",
            f"--registry-dir={node.registry_dir}",
            f"--cdi-dir={node.cdi_dir}",
            "--bind-address=127.0.0.1",
            f"--healthcheck-port={scraping.free_port()}",
            "--metrics-port=-1",
        )
        kube.wait_for(plugin.registered, what="the plugin from the image registered", timeout=120)
        print(f"\nplugin from the image: registered {time.monotonic() - started:.1f} s after start")
        kube.wait_for(node.published, what="the node's devices published", timeout=60)

        ns = scenario.namespace
        scenario.schedule(node.name, "gpu", [objects.request("gpu", "gpu.dra.dev")])
        kube.wait_for(
            lambda: node.prepared_record(ns, "gpu") is not None, what="claim prepared", timeout=60
        )
        specs = list(node.cdi_dir.glob("*.json")) + list(node.cdi_dir.glob("*.yaml"))
        assert len(specs) == 1, specs
        spec = json.loads(specs[0].read_text())
        assert spec["kind"] == "k8s.gpu.dra.dev/claim"
        assert plugin.running()

        scenario.client.delete(f"/api/v1/namespaces/{ns}/pods/gpu")
        kube.wait_for(
            lambda: not list(node.cdi_dir.glob("*.json")), what="claim unprepared", timeout=60
        )
    except BaseException:
        print(f"--- plugin container ---\n{plugin.log_tail(60)}\n{node.log_tails()}")
        raise
    finally:
        node.stop()
        runtime.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    assert runtime.leftovers() == []
