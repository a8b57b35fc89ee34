"""A fake node with our plugin on it: the fake kubelet (the kubelet's own DRA code) and the plugin.

As on a real node, the fake kubelet starts first (it creates its Node, wipes the node's
ResourceSlices, and watches the registry dir); then the plugin process (``python -m
kubeletplugin`` with fake GPUs) registers through the real handshake. The fake kubelet prepares
the pods bound to its node through the plugin, resolves the returned CDI IDs with the CDI Go
library, and writes what each container would get to ``<records>/<namespace>_<pod>.json``.
The plugin publishes the node's ResourceSlices itself (after the kubelet's start-up wipe).

With a `containerd.Containerd` as ``runtime``, the node starts it first, the fake kubelet also
starts each prepared pod's containers there (CRI, with the CDI IDs the plugin returned) and
records what they printed; `stop` stops it last and removes every trace of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import sys
from typing import Any

from dra_driver.checkpoint import model, store
from e2e.harness import containerd, controlplane, kube, objects, processes

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class PluginNode:
    plane: controlplane.ControlPlane
    client: kube.Kube
    bin_dir: pathlib.Path
    work_dir: pathlib.Path
    name: str
    gpus: str
    """a fake GPU spec (``2xA100-40GB``: ``--gpus=fake:<spec>``), or ``nvml`` for the real GPUs"""
    pod_uid: str = "plugin-pod-1"
    extra_args: tuple[str, ...] = ()
    children: list[processes.Process] = dataclasses.field(default_factory=list)
    runtime: containerd.Containerd | None = None

    @property
    def registry_dir(self) -> pathlib.Path:
        return self.work_dir / "plugins_registry"

    @property
    def plugin_dir(self) -> pathlib.Path:
        return self.work_dir / "plugins" / objects.DRIVER

    @property
    def cdi_dir(self) -> pathlib.Path:
        return self.work_dir / "cdi"

    @property
    def records_dir(self) -> pathlib.Path:
        return self.work_dir / "records"

    def checkpointed(self) -> dict[str, model.PrepareState]:
        """The claims in the node's checkpoint (either layout), and how far each got."""
        loaded = store.read_node(
            self.plugin_dir,
            lock_path=self.plugin_dir / "serialize.lock",
            boot_id=store.current_boot_id(),
        )
        return {uid: claim.state for uid, claim in loaded.claims.items()}

    def start(self) -> None:
        for directory in (self.registry_dir, self.plugin_dir, self.cdi_dir, self.records_dir):
            directory.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(exist_ok=True)
        if self.runtime is not None and not self.runtime.running():
            self.runtime.start()
        self.start_kubelet()
        self.start_plugin()
        kube.wait_for(self._published, what=f"slices of {self.name} published", timeout=60)

    def start_kubelet(self) -> processes.Process:
        """Start (or restart) the fake kubelet; like the real one it wipes the node's slices."""
        (self.records_dir / "plugins.json").unlink(missing_ok=True)
        kubelet = processes.Process(
            f"fake-kubelet-{self.name}-{len(self.children)}",
            [
                str(self.bin_dir / "fake-kubelet"),
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--node-name={self.name}",
                f"--registry-dir={self.registry_dir}",
                f"--state-dir={self.work_dir / 'kubelet-state'}",
                f"--cdi-dir={self.cdi_dir}",
                f"--records-dir={self.records_dir}",
                "--reconcile-period=1s",
                *self._runtime_args(),
            ],
            log_dir=self.work_dir / "logs",
        )
        self.children.append(kubelet)
        kubelet.start()
        kube.wait_for(self._node_ready, what=f"fake kubelet of {self.name} up", timeout=60)
        kube.wait_for(
            (self.records_dir / "plugins.json").exists,
            what=f"fake kubelet of {self.name} ready for plugins",
            timeout=60,
        )
        return kubelet

    def start_plugin(self, pod_uid: str | None = None) -> processes.Process:
        plugin = processes.Process(
            f"plugin-{self.name}-{len(self.children)}",
            [
                sys.executable,
                "-m",
                "kubeletplugin",
                f"--node-name={self.name}",
                f"--gpus={self.gpus if self.gpus == 'nvml' else f'fake:{self.gpus}'}",
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--plugin-dir={self.plugin_dir}",
                f"--registry-dir={self.registry_dir}",
                f"--cdi-dir={self.cdi_dir}",
                f"--pod-uid={pod_uid or self.pod_uid}",
                "--sweep-interval=5",
                *self.extra_args,
            ],
            log_dir=self.work_dir / "logs",
            cwd=REPO,
        )
        self.children.append(plugin)
        plugin.start()
        kube.wait_for(
            functools.partial(self._registered, plugin, pod_uid or self.pod_uid),
            what=f"plugin of {self.name} registered",
            timeout=60,
        )
        return plugin

    def stop(self) -> None:
        for process in reversed(self.children):
            process.stop()
        if self.runtime is not None:
            self.runtime.stop()

    def _runtime_args(self) -> list[str]:
        if self.runtime is None:
            return []
        return [
            f"--container-runtime-endpoint={self.runtime.endpoint}",
            f"--cgroup-root={self.runtime.cgroup_name}",
        ]

    def record(self, namespace: str, pod: str) -> dict[str, Any] | None:
        path = self.records_dir / f"{namespace}_{pod}.json"
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return record

    def prepared_record(self, namespace: str, pod: str) -> dict[str, Any] | None:
        record = self.record(namespace, pod)
        return record if record is not None and not record.get("error") else None

    def log_tails(self) -> str:
        tails = [f"--- {p.name} ---\n{p.log_tail(30)}" for p in self.children]
        if self.runtime is not None:
            tails.append(f"--- containerd ---\n{self.runtime.log_tail(30)}")
        return "\n".join(tails)

    def published(self) -> bool:
        """Whether the node's pool is complete on the API server."""
        return self._published()

    def _published(self) -> bool:
        items = self.client.items(f"{objects.SLICES}?fieldSelector=spec.nodeName={self.name}")
        counts = {item["spec"]["pool"]["resourceSliceCount"] for item in items}
        return len(counts) == 1 and len(items) == counts.pop()

    def _node_ready(self) -> bool:
        if not self.client.exists(f"/api/v1/nodes/{self.name}"):
            return False
        node = self.client.get(f"/api/v1/nodes/{self.name}")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _registered(self, plugin: processes.Process, pod_uid: str) -> bool:
        if not plugin.running():
            raise RuntimeError(f"the plugin exited:\n{plugin.log_tail()}")
        status = self.records_dir / "plugins.json"
        try:
            plugins = json.loads(status.read_text()).get("plugins") or []
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        endpoint = f"dra-{pod_uid}.sock"
        return any(
            p["driver"] == objects.DRIVER and p["registered"] and p["endpoint"].endswith(endpoint)
            for p in plugins
        )
