"""The device check's flow (``run``): a local control plane, one node (containerd with runc, the fake
kubelet starting pods through it, our plugin on real NVML or, with ``--dry-run``, on fake GPUs
over a synthetic driver root), then each of `checks.CHECKS` in turn: claim and pod created,
scheduled by kube-scheduler, prepared by the plugin, the pod's containers started by containerd
with the claim's CDI devices, the probe's report of each container judged, the pod deleted
gracefully (containers stopped, then the claim unprepared) and the claim deleted and waited for (so
the GPU is free for the next). At the end the node stops and containerd must have left nothing
(processes, mounts, cgroups: `containerd.Containerd.leftovers`). The result is one JSON summary;
``ok`` is false when a required claim failed or something was left behind.

The dry run's node has three fake H100s, one per claim (pinned by CEL selectors on the ``index``
attribute), on a synthetic 580.95.05 driver root (`tests.driverroot.synthetic`: the fake libcuda
as the driver's library, real device nodes, a proc tree with MIG capabilities for the MIG GPU's
GPU instances 1..7), so the fake libcuda gets into the containers the way the real one does.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from typing import TypedDict

from dra_driver.isolation import quotas
from e2e import probe
from e2e.devicecheck import checks, containers
from e2e.harness import containerd, controlplane, images, kube, nodeagents, objects, workloads
from tests.driverroot import synthetic

NAMESPACE = "device-check"
NODE = "gpu-node"
DRY_RUN_GPUS = "3xH100-80GB"
DRY_RUN_GPU_INDEX = {"gpu": 0, "share": 1, "mig": 2}
"""The dry run's fake GPU of each claim; the MIG GPU gets MIG capability files."""
_MIG_GPU_INSTANCES = range(1, 8)


@dataclasses.dataclass(frozen=True)
class Settings:
    bin_dir: pathlib.Path
    """kube-apiserver, etcd, kube-scheduler, kube-controller-manager, fake-kubelet"""
    runtime_bin_dir: pathlib.Path
    """containerd, containerd-shim-runc-v2, ctr, runc"""
    image: images.Image
    """the test image with the probe (an OCI archive, imported into containerd)"""
    work_dir: pathlib.Path
    preload_library: pathlib.Path
    nvidia_cdi_hook: pathlib.Path
    """the hook the plugin installs into its dir and names in the CDI specs"""
    fake_driver: pathlib.Path | None = None
    """dry run: the fake libcuda's and NVML's directory (fake GPUs, a synthetic driver root)"""
    timeout: float = 90
    """per wait: scheduled, reported, released"""

    @property
    def real_gpus(self) -> bool:
        return self.fake_driver is None


class Summary(TypedDict):
    ok: bool
    mode: str
    """nvml, or dry-run"""
    devices: list[str]
    """what the node published"""
    claims: list[checks.ClaimResult]
    leftovers: list[str]
    """what containerd's pods or containerd itself left on the machine; must be empty"""
    seconds: float
    error: str | None
    """a failure before any claim (the control plane, containerd or the plugin did not start)"""


def run(settings: Settings) -> Summary:
    started = time.monotonic()
    summary: Summary = {
        "ok": False,
        "mode": "nvml" if settings.real_gpus else "dry-run",
        "devices": [],
        "claims": [],
        "leftovers": [],
        "seconds": 0.0,
        "error": None,
    }
    plane = controlplane.ControlPlane(bin_dir=settings.bin_dir, work_dir=settings.work_dir / "cp")
    node: nodeagents.PluginNode | None = None
    try:
        plane.start()
        client = plane.client()
        objects.apply_device_classes(client)
        objects.create_namespace(client, NAMESPACE)
        node = _node(settings, plane, client)
        node.start()
        summary["devices"] = _published(client)
        for check in checks.CHECKS:
            summary["claims"].append(_one(settings, client, node, check, summary["devices"]))
    except (controlplane.StartError, RuntimeError, TimeoutError, OSError) as error:
        logs = f"\n{node.log_tails()}" if node is not None else ""
        summary["error"] = f"{type(error).__name__}: {error}{logs}"
    finally:
        if node is not None:
            node.stop()
            if node.runtime is not None:
                summary["leftovers"] = node.runtime.leftovers()
        plane.stop()
    summary["ok"] = (
        summary["error"] is None
        and not summary["leftovers"]
        and all(claim["ok"] for claim in summary["claims"] if claim["required"])
    )
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def _node(
    settings: Settings, plane: controlplane.ControlPlane, client: kube.Kube
) -> nodeagents.PluginNode:
    node_dir = settings.work_dir / "node"
    args = [
        f"--preload-library={settings.preload_library}",
        f"--nvidia-cdi-hook-source={settings.nvidia_cdi_hook}",
    ]
    if settings.fake_driver is not None:
        args += _synthetic_driver(settings.work_dir / "driver", settings.fake_driver)
    # With --gpus nvml the plugin's driver root is / (its default): the machine's own driver.
    node = nodeagents.PluginNode(
        plane=plane,
        client=client,
        bin_dir=settings.bin_dir,
        work_dir=node_dir,
        name=NODE,
        gpus="nvml" if settings.real_gpus else DRY_RUN_GPUS,
        extra_args=tuple(args),
    )
    node.runtime = containerd.Containerd(
        bin_dir=settings.runtime_bin_dir,
        directory=node_dir / "containerd",
        cdi_dir=node.cdi_dir,
        image=settings.image,
        log_dir=node_dir / "logs",
    )
    return node


def _synthetic_driver(base: pathlib.Path, fakes: pathlib.Path) -> list[str]:
    """A synthetic driver root for the dry run's GPUs (minor = index); the plugin's flags."""
    mig_gpu = DRY_RUN_GPU_INDEX["mig"]
    root = synthetic.create(
        base,
        fakes=fakes,
        gpu_minors=tuple(sorted(DRY_RUN_GPU_INDEX.values())),
        mig=[synthetic.MigInstance(gpu=mig_gpu, gi=gi, ci=0) for gi in _MIG_GPU_INSTANCES],
    )
    return [
        f"--driver-root={root.driver_root}",
        f"--dev-root={root.dev_root}",
        f"--proc-root={root.proc_root}",
    ]


def _published(client: kube.Kube) -> list[str]:
    return sorted(
        device["name"]
        for item in client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={NODE}")
        for device in item["spec"].get("devices") or []
    )


def _one(
    settings: Settings,
    client: kube.Kube,
    node: nodeagents.PluginNode,
    check: checks.Check,
    devices: list[str],
) -> checks.ClaimResult:
    mig = check.name == "mig"
    if mig and not any("-mig-" in device for device in devices):
        return checks.skipped(check, "the node publishes no MIG devices (GPU not MIG-capable)")
    capacity = dict(check.capacity) if check.capacity else None
    selectors: list[str] = []
    env: dict[str, str] = {}
    if not settings.real_gpus:
        index = DRY_RUN_GPU_INDEX[check.name]
        selectors = containers.pinned(gpu_index=index, mig=mig)
        env = containers.fake_driver_env(node=NODE, gpu_index=index, mig=mig)
    request = objects.request("device", check.device_class, capacity=capacity, selectors=selectors)
    objects.create_claim(client, NAMESPACE, check.name, [request])
    assert node.runtime is not None
    client.create(
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        containers.pod(
            check.name,
            node=NODE,
            image=node.runtime.image.ref,
            claim=check.name,
            containers=check.containers,
            env=env,
        ),
    )
    device: str | None = None
    try:
        try:
            objects.wait_scheduled(client, NAMESPACE, check.name, timeout=settings.timeout)
        except TimeoutError:
            why = objects.unschedulable_message(client, NAMESPACE, check.name)
            return checks.failed(check, device=None, error=f"not scheduled: {why}")
        device = next(iter(objects.allocated_devices(client, NAMESPACE, check.name)), None)
        reports: dict[str, probe.Report] = {}
        for name in check.containers:
            try:
                reports[name] = workloads.wait_seen(
                    node, NAMESPACE, check.name, name, timeout=settings.timeout
                )
            except (TimeoutError, RuntimeError) as error:
                why = _why_no_report(node, check.name, name, error)
                return checks.failed(check, device=device, error=why)
        return checks.judge(
            check,
            device=device or "",
            report=reports[checks.MAIN],
            holder=reports.get(checks.HOLDER),
            context_reserve=_context_reserve(node, check.name),
            real_gpus=settings.real_gpus,
        )
    finally:
        _release(settings, client, node, check.name)


def _context_reserve(node: nodeagents.PluginNode, pod: str) -> int:
    """``context_reserve_bytes`` of the claim's quota config, read on the host from what the
    container gets mounted under the claims root (`quotas.CONTAINER_ROOT`): the claim's directory
    or the config itself. 0 without a config or the key."""
    mounts = workloads.container_record(node, NAMESPACE, pod).get("mounts") or []
    for mount in mounts:
        if not mount["containerPath"].startswith(f"{quotas.CONTAINER_ROOT}/"):
            continue
        host = pathlib.Path(mount["hostPath"])
        config = host / quotas.FILE if host.is_dir() else host
        if config.name == quotas.FILE and config.is_file():
            lines = config.read_text().splitlines()
            values = dict(line.split("=", 1) for line in lines if "=" in line)
            return int(values.get("context_reserve_bytes", "0"))
    return 0


def _why_no_report(node: nodeagents.PluginNode, pod: str, container: str, error: Exception) -> str:
    """The record's error (prepare or start failed), else the container's state and the wait's."""
    record = node.record(NAMESPACE, pod) or {}
    if record.get("error"):
        return f"container {container}: {record['error']}"
    state = workloads.container_record(node, NAMESPACE, pod, container)
    fields = {key: state.get(key) for key in ("state", "exitCode") if key in state}
    return f"container {container}: no probe report ({fields or 'not started'}): {error}"


def _release(settings: Settings, client: kube.Kube, node: nodeagents.PluginNode, name: str) -> None:
    """Pod gone (containers stopped, claim unprepared), claim gone, nothing left of the pod."""
    workloads.delete_gracefully(client, NAMESPACE, name, timeout=settings.timeout)
    path = f"/apis/resource.k8s.io/v1/namespaces/{NAMESPACE}/resourceclaims/{name}"
    client.delete(path)
    kube.wait_for(
        functools.partial(client.missing, path),
        what=f"claim {name} released",
        timeout=settings.timeout,
    )
    if node.runtime is not None:
        left = containerd.wait_pods_gone(node.runtime, timeout=settings.timeout)
        if left:
            raise RuntimeError(f"pod {name} left {left}")


def report_line(summary: Summary) -> str:
    """The summary as one JSON line (what device-check.sh prints)."""
    return json.dumps(summary)
