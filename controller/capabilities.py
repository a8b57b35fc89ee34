"""What the cluster's API server can do, and so which mode the node publishes in.

Full mode needs partitionable devices (counter sets) and consumable capacity (multi-allocatable
devices with request policies). A server with those gates off accepts a full-mode pool but
silently drops the fields, and its scheduler then hands one GPU to several claims (shown by the
e2e compatibility scenarios). So the node asks the server itself: a server-side dry-run create of
a probe slice of each kind, compared with what the server says it would store. Nothing is
written.
"""

from __future__ import annotations

import dataclasses

import structlog

from controller import rest, versions
from dra_driver.slices import settings

log = structlog.get_logger(__name__)

GROUP_PATH = "/apis/resource.k8s.io"


@dataclasses.dataclass(frozen=True)
class Capabilities:
    served: tuple[str, ...]
    """``resource.k8s.io`` versions served."""
    api_version: str
    """The version the driver talks (`versions.choose`)."""
    partitionable_devices: bool
    consumable_capacity: bool

    @property
    def mode(self) -> settings.Mode:
        full = self.partitionable_devices and self.consumable_capacity
        return settings.Mode.FULL if full else settings.Mode.COMPAT


def detect(client: rest.Rest, *, driver: str, node_name: str) -> Capabilities:
    served = served_versions(client)
    version = versions.choose(served)
    probe = _probe(driver, node_name, counters=True)
    counters = _keeps(client, probe, version, "sharedCounters")
    shared = _probe(driver, node_name, counters=False)
    consumable = _keeps(client, shared, version, "devices", 0, "allowMultipleAllocations")
    found = Capabilities(
        served, version, partitionable_devices=counters, consumable_capacity=consumable
    )
    log.info(
        "server.capabilities",
        served=list(served),
        api_version=version,
        partitionable_devices=counters,
        consumable_capacity=consumable,
        mode=found.mode.value,
    )
    return found


def served_versions(client: rest.Rest) -> tuple[str, ...]:
    group = client.get(GROUP_PATH)
    return tuple(v["version"] for v in group.get("versions", []))


def _keeps(client: rest.Rest, body: rest.Obj, version: str, *path: str | int) -> bool:
    stored = versions.from_server(
        client.request(
            "POST",
            versions.slices_path(version),
            body=versions.to_server(body, version),
            query={"dryRun": "All"},
        ),
        version,
    )
    node: object = stored.get("spec")
    for key in path:
        in_dict = isinstance(node, dict) and isinstance(key, str) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not (in_dict or in_list):
            return False
        node = node[key]  # type: ignore[index]
    return bool(node)


def _probe(driver: str, node_name: str, *, counters: bool) -> rest.Obj:
    spec: rest.Obj = {
        "driver": driver,
        "nodeName": node_name,
        "pool": {"name": f"{node_name}-capability-probe", "generation": 1, "resourceSliceCount": 1},
    }
    if counters:
        spec["sharedCounters"] = [{"name": "probe", "counters": {"memory": {"value": "1Gi"}}}]
    else:
        spec["devices"] = [
            {
                "name": "probe",
                "allowMultipleAllocations": True,
                "capacity": {
                    "memory": {
                        "value": "1Gi",
                        "requestPolicy": {"default": "1Mi", "validRange": {"min": "1Mi"}},
                    }
                },
            }
        ]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"generateName": "capability-probe-"},
        "spec": spec,
    }
