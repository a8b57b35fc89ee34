"""MPS daemons as Deployments: one pod per daemon, pinned to this node (the production runner).

A daemon in the plugin's own container would die with every plugin restart or upgrade, and with
it every MPS client on the GPU. Here each daemon is a one-replica Deployment whose pod is bound
to this node (``spec.nodeName``), runs ``nvidia-cuda-mps-control -f`` privileged, and mounts the
daemon's directory from the host at the same path, so the plugin reaches it through the pipe
directory exactly as with a local daemon (readiness, settings, ``quit``). The Deployment goes
when the daemon's last user goes. Starting a daemon whose Deployment exists adopts it. An API
error is the daemon's (`mps.MpsError`), so a prepare fails that claim with the reason.
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


class DeploymentRunner:
    def __init__(
        self, client: rest.Rest, *, namespace: str, node_name: str, image: str, driver: str
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.node_name = node_name
        self.image = image
        self.driver = driver

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

    def deployment(
        self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]
    ) -> dict[str, Any]:
        base = str(pathlib.Path(env["CUDA_MPS_PIPE_DIRECTORY"]).parent)
        labels = {
            "app.kubernetes.io/name": "gpu-dra-mps",
            "app.kubernetes.io/managed-by": self.driver,
            LABEL: self.name(daemon_id),
        }
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
                                "command": [*control, "-f"],
                                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                                "securityContext": {"privileged": True},
                                "volumeMounts": [{"name": "daemon", "mountPath": base}],
                            }
                        ],
                        "volumes": [
                            {"name": "daemon", "hostPath": {"path": base, "type": "Directory"}}
                        ],
                    },
                },
            },
        }

    def _path(self) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments"
