"""MPS daemons as Deployments: one pod per daemon, pinned to this node (the production runner).

A daemon in the plugin's own container would die with every plugin restart or upgrade, and with
it every MPS client on the GPU. Here each daemon is a one-replica Deployment whose pod is bound
to this node (``spec.nodeName``), runs ``nvidia-cuda-mps-control -f`` privileged, and mounts the
daemon's directory from the host at the same path, so the plugin reaches it through the pipe
directory exactly as with a local daemon (readiness, settings, ``quit``); its ``shm`` is the
pod's ``/dev/shm``, as it is its clients'. The Deployment goes when the daemon's last user goes.

Nothing ties a Deployment to the plugin pod that made it: a plugin restart or a rolling update
leaves it and its pod alone, and the next plugin adopts it. Starting a daemon whose Deployment
exists adopts it; `DeploymentRunner.kept` lists this node's Deployments (by the daemon id in
their pipe directory, which older releases' Deployments carry too), so that start-up
(`mps.Daemons.reconcile`) stops those no claim holds. With real GPUs the pod mounts the driver
root read-only and runs the driver's ``nvidia-cuda-mps-control`` with the driver's libraries, as
the plugin's own container does. An API error is the daemon's (`mps.MpsError`), so a prepare
fails that claim with the reason.
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from controller import errors, rest
from dra_driver.isolation import mps

log = structlog.get_logger(__name__)

LABEL = "gpu.dra.dev/mps-daemon"
APP = "gpu-dra-mps"
"""``app.kubernetes.io/name`` of the daemon Deployments and their pods."""


DRIVER_ROOT = "/driver-root"
"""Where a daemon pod sees the host's driver root (real GPUs)."""

_WITH_DRIVER = """set -e
lib=$(find /driver-root/usr/lib64 /driver-root/usr/lib /driver-root/lib64 /driver-root/lib \\
  -maxdepth 2 -name libcuda.so.1 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then echo "no libcuda.so.1 under the driver root" >&2; exit 2; fi
export LD_LIBRARY_PATH=$(dirname "$lib") PATH="$PATH:/driver-root/usr/bin:/driver-root/bin"
exec "$0" "$@"
"""
"""The daemon pod's entry with real GPUs: the driver's tools and libraries, found on the host."""


class DeploymentRunner:
    def __init__(
        self,
        client: rest.Rest,
        *,
        namespace: str,
        node_name: str,
        image: str,
        driver: str,
        driver_root: str | None = None,
        pull_policy: str = "IfNotPresent",
        pull_secrets: Sequence[str] = (),
    ) -> None:
        if not image:
            raise ValueError("MPS daemon pods need an image (--mps-image)")
        self.client = client
        self.namespace = namespace
        self.node_name = node_name
        self.image = image
        self.driver = driver
        self.driver_root = driver_root
        """Host path of the NVIDIA driver (real GPUs); None: the control command is in the image."""
        self.pull_policy = pull_policy
        self.pull_secrets = tuple(pull_secrets)
        """Secrets (in `namespace`) for pulling `image` from a private registry."""

    def name(self, daemon_id: str) -> str:
        digest = hashlib.sha256(f"{self.node_name}/{daemon_id}".encode()).hexdigest()[:10]
        return f"mps-{daemon_id[:40]}-{digest}".lower()

    def start(self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]) -> None:
        body = self.deployment(daemon_id, control, env)
        try:
            self.client.request("POST", self._path(), body=body)
        except errors.ConflictError:
            log.info("mps.deployment_exists", daemon=daemon_id)  # adopted
        except errors.ApiError as exc:
            raise mps.MpsError(f"creating its Deployment failed: {exc}") from exc
        else:
            log.info("mps.deployment_created", daemon=daemon_id, name=body["metadata"]["name"])

    def stop(self, daemon_id: str) -> None:
        name = self.name(daemon_id)
        try:
            self.client.request(
                "DELETE", f"{self._path()}/{name}", body={"propagationPolicy": "Background"}
            )
        except errors.NotFoundError:
            pass
        except errors.ApiError as exc:  # its pod would start the daemon again: try again later
            raise mps.MpsError(f"deleting Deployment {name} failed: {exc}") from exc

    def kept(self) -> set[str]:
        """The daemons with a Deployment of ours pinned to this node."""
        selector = f"app.kubernetes.io/name={APP},app.kubernetes.io/managed-by={self.driver}"
        try:
            listed = self.client.get(self._path(), labelSelector=selector)
        except errors.ApiError as exc:
            raise mps.MpsError(f"listing MPS Deployments failed: {exc}") from exc
        kept = set()
        for item in listed.get("items", []):
            daemon_id = _daemon_id(item)
            if daemon_id is None or _node(item) != self.node_name:
                continue
            if item["metadata"]["name"] == self.name(daemon_id):  # not a look-alike
                kept.add(daemon_id)
        return kept

    def deployment(
        self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]
    ) -> dict[str, Any]:
        base = str(pathlib.Path(env["CUDA_MPS_PIPE_DIRECTORY"]).parent)
        labels = {
            "app.kubernetes.io/name": APP,
            "app.kubernetes.io/managed-by": self.driver,
            LABEL: self.name(daemon_id),
        }
        command = [*control, "-f"]
        mounts: list[dict[str, Any]] = [
            {"name": "daemon", "mountPath": base},
            {"name": "daemon", "mountPath": "/dev/shm", "subPath": "shm"},
        ]
        volumes: list[dict[str, Any]] = [
            {"name": "daemon", "hostPath": {"path": base, "type": "Directory"}}
        ]
        if self.driver_root is not None:
            command = ["/bin/sh", "-c", _WITH_DRIVER, *command]
            mounts.append(
                {
                    "name": "driver-root",
                    "mountPath": DRIVER_ROOT,
                    "readOnly": True,
                    "mountPropagation": "HostToContainer",
                }
            )
            volumes.append(
                {"name": "driver-root", "hostPath": {"path": self.driver_root, "type": "Directory"}}
            )
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name(daemon_id),
                "namespace": self.namespace,
                "labels": labels,
            },
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {LABEL: self.name(daemon_id)}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeName": self.node_name,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "mps-control-daemon",
                                "image": self.image,
                                "imagePullPolicy": self.pull_policy,
                                "command": command,
                                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                                "securityContext": {"privileged": True},
                                "volumeMounts": mounts,
                            }
                        ],
                        "volumes": volumes,
                        **self._pull_secrets(),
                    },
                },
            },
        }

    def _pull_secrets(self) -> dict[str, Any]:
        if not self.pull_secrets:
            return {}
        return {"imagePullSecrets": [{"name": name} for name in self.pull_secrets]}

    def _path(self) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments"


def _daemon_id(deployment: dict[str, Any]) -> str | None:
    """The daemon a Deployment runs: the directory of its pipe directory."""
    for container in deployment["spec"]["template"]["spec"].get("containers", []):
        for item in container.get("env", []):
            if item.get("name") == "CUDA_MPS_PIPE_DIRECTORY" and item.get("value"):
                return pathlib.Path(item["value"]).parent.name
    return None


def _node(deployment: dict[str, Any]) -> str | None:
    node: str | None = deployment["spec"]["template"]["spec"].get("nodeName")
    return node
