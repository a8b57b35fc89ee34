"""The device check's flow (``run``): a local control plane, one node (the fake kubelet and our
plugin, on real NVML or, with ``--dry-run``, on fake GPUs), then each of `checks.CHECKS` in turn:
claim and pod created, scheduled by kube-scheduler, prepared by the plugin through the fake
kubelet, the probe run as the pod's container, the pod and claim deleted and waited for (so the
GPU is free for the next). The result is one JSON summary; ``ok`` is false when a required claim
failed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from typing import TypedDict

from e2e.devicecheck import checks, containers
from e2e.harness import controlplane, kube, nodeagents, objects

NAMESPACE = "device-check"
NODE = "gpu-node"
DRY_RUN_GPUS = "1xH100-80GB"
_SHARE_POOL_BYTES = 80 * (1 << 30)


@dataclasses.dataclass(frozen=True)
class Settings:
    bin_dir: pathlib.Path
    """kube-apiserver, etcd, kube-scheduler, kube-controller-manager, fake-kubelet"""
    work_dir: pathlib.Path
    probe: pathlib.Path
    preload_library: pathlib.Path
    fake_driver: pathlib.Path | None = None
    """dry run: the fake libcuda's directory (fake GPUs, no real driver)"""
    nvidia_cdi_hook: pathlib.Path | None = None
    timeout: float = 90
    """per wait: scheduled, prepared, released"""

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
    seconds: float
    error: str | None
    """a failure before any claim (the control plane or the plugin did not start)"""


def run(settings: Settings) -> Summary:
    started = time.monotonic()
    summary: Summary = {
        "ok": False,
        "mode": "nvml" if settings.real_gpus else "dry-run",
        "devices": [],
        "claims": [],
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
        summary["ok"] = all(claim["ok"] for claim in summary["claims"] if claim["required"])
    except (controlplane.StartError, RuntimeError, TimeoutError, OSError) as error:
        logs = f"\n{node.log_tails()}" if node is not None else ""
        summary["error"] = f"{type(error).__name__}: {error}{logs}"
    finally:
        if node is not None:
            node.stop()
        plane.stop()
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def _node(
    settings: Settings, plane: controlplane.ControlPlane, client: kube.Kube
) -> nodeagents.PluginNode:
    args = [f"--preload-library={settings.preload_library}"]
    if settings.real_gpus:
        # PluginNode always passes --gpus=fake:<gpus>; argparse keeps the last --gpus.
        # TODO(nodeagents): a PluginNode field for the backend instead of this override.
        args.append("--gpus=nvml")
    if settings.nvidia_cdi_hook is not None:
        args.append(f"--nvidia-cdi-hook={settings.nvidia_cdi_hook}")
    return nodeagents.PluginNode(
        plane=plane,
        client=client,
        bin_dir=settings.bin_dir,
        work_dir=settings.work_dir / "node",
        name=NODE,
        gpus=DRY_RUN_GPUS,
        extra_args=tuple(args),
    )


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
    if check.name == "mig" and not any("-mig-" in device for device in devices):
        return checks.skipped(check, "the node publishes no MIG devices (GPU not MIG-capable)")
    capacity = dict(check.capacity) if check.capacity else None
    requests = [objects.request("device", check.device_class, capacity=capacity)]
    objects.create_claimed_pod(client, NAMESPACE, check.name, node=NODE, requests=requests)
    device: str | None = None
    try:
        try:
            objects.wait_scheduled(client, NAMESPACE, check.name, timeout=settings.timeout)
        except TimeoutError:
            why = objects.unschedulable_message(client, NAMESPACE, check.name)
            return checks.failed(check, device=None, error=f"not scheduled: {why}")
        device = next(iter(objects.allocated_devices(client, NAMESPACE, check.name)), None)
        record = _prepared(settings, node, check.name)
        if record.get("error"):
            return checks.failed(check, device=device, error=f"prepare: {record['error']}")
        report, stderr = containers.in_namespace(
            record["containers"]["main"],
            program=settings.probe,
            args=check.probe_args,
            scratch=settings.work_dir / "scratch" / check.name,
            extra_env=_fake_driver_env(settings, record),
        )
        if report is None:
            return checks.failed(check, device=device, error=f"no probe report: {stderr}")
        return checks.judge(check, device=device or "", report=report, real_gpus=settings.real_gpus)
    finally:
        _release(settings, client, check.name)


def _prepared(settings: Settings, node: nodeagents.PluginNode, pod: str) -> kube.Obj:
    """The pod's record once prepared, or its last error once one persists a few retries."""
    deadline = time.monotonic() + settings.timeout
    while True:
        record = node.record(NAMESPACE, pod)
        if record is not None and not record.get("error"):
            return record
        if time.monotonic() > deadline:
            return record or {"error": f"no record of pod {pod} after {settings.timeout:.0f}s"}
        time.sleep(0.5)


def _fake_driver_env(settings: Settings, record: kube.Obj) -> dict[str, str]:
    """Dry run: the fake libcuda describes the claimed device as the only GPU."""
    if settings.fake_driver is None:
        return {}
    env = dict(item.split("=", 1) for item in record["containers"]["main"].get("env") or [])
    uuids = [v for k, v in env.items() if k.endswith("_UUID") and not k.endswith("PARENT_UUID")]
    return {
        "LD_LIBRARY_PATH": str(settings.fake_driver),
        "FAKE_GPU_UUIDS": ",".join(uuids),
        "FAKE_GPU_MEM_BYTES": str(_SHARE_POOL_BYTES),
    }


def _release(settings: Settings, client: kube.Kube, name: str) -> None:
    objects.delete_pod(client, NAMESPACE, name)
    path = f"/apis/resource.k8s.io/v1/namespaces/{NAMESPACE}/resourceclaims/{name}"
    client.delete(path)
    kube.wait_for(
        functools.partial(client.missing, path),
        what=f"claim {name} released",
        timeout=settings.timeout,
    )


def report_line(summary: Summary) -> str:
    """The summary as one JSON line (what device-check.sh prints)."""
    return json.dumps(summary)
