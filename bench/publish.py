"""Benchmark of the ResourceSlice controller against a real local kube-apiserver; prints JSON.

Measures: publishing one fake 8×A100-40GB node in full mode (seconds, API requests, writes),
re-publishing it unchanged (target: zero writes), and publishing 200 fake nodes of that kind from
one process, one after another (seconds). Run from the repo root:
``.venv/bin/python bench/publish.py``. The control plane is built once (cached) and started in a
temporary directory for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

from kubernetes import config

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run as a script

from controller import rest, slicediff, slicesync
from dra_driver import backends, inventory, logs
from dra_driver.slices import building, settings, splitting
from e2e.harness import binaries, controlplane, kube, objects

GPUS = "8xA100-40GB"
NODES = 200


def desired(node: str) -> list[splitting.SliceContent]:
    backend = backends.open_backend(f"fake:{GPUS}", node_name=node)
    groups = building.build(inventory.discover(backend, node_name=node), settings.PublishSettings())
    return splitting.split(groups)


def sync_for(client: rest.Rest, api: kube.Kube, node: str) -> slicesync.SliceSync:
    uid = objects.create_node(api, node)["metadata"]["uid"]
    owner = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": True}
    target = slicediff.Target(driver=objects.DRIVER, node_name=node, pool=node, owner=owner)
    return slicesync.SliceSync(client, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES, help="nodes published one by one")
    args = parser.parse_args(argv)
    logs.configure(level="warning")
    bin_dir = binaries.ensure_built()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as work:
        plane = controlplane.ControlPlane(bin_dir=bin_dir, work_dir=pathlib.Path(work))
        with plane:
            api = kube.Kube(server=plane.server, token=plane.token, ca_file=str(plane.ca_file))
            client = rest.Rest(config.new_client_from_config(str(plane.kubeconfig)))
            result = measure(client, api, nodes=args.nodes)
    result |= {
        "gpus_per_node": GPUS,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count()},
        "notes": [
            "Real kube-apiserver v1.37.2 with etcd (--unsafe-no-fsync) on the same machine.",
            "Desired pools are computed before timing; timings are the controller's API work.",
            "nodes200 publishes one node after another from one process (no parallelism).",
        ],
    }
    print(json.dumps(result, indent=2))
    return 0


def measure(client: rest.Rest, api: kube.Kube, *, nodes: int = NODES) -> dict[str, object]:
    sync = sync_for(client, api, "bench-node-0")
    pool = desired("bench-node-0")
    requests, writes = client.requests, client.writes
    start = time.perf_counter()
    plan = sync.publish(pool)
    publish_seconds = time.perf_counter() - start
    publish_requests, publish_writes = client.requests - requests, client.writes - writes

    requests, writes = client.requests, client.writes
    start = time.perf_counter()
    sync.publish(pool)
    republish_seconds = time.perf_counter() - start
    republish_requests, republish_writes = client.requests - requests, client.writes - writes

    print(f"publishing {nodes} nodes", file=sys.stderr)
    pools = {f"bench-node-{i}": desired(f"bench-node-{i}") for i in range(1, nodes + 1)}
    syncs = {name: sync_for(client, api, name) for name in pools}
    writes = client.writes
    start = time.perf_counter()
    for name, content in pools.items():
        syncs[name].publish(content)
    nodes_seconds = time.perf_counter() - start
    slices = len(api.items(objects.SLICES))
    return {
        "publish_seconds": round(publish_seconds, 3),
        "publish_requests": publish_requests,
        "publish_writes": publish_writes,
        "publish_slices": len(plan.creates),
        "republish_seconds": round(republish_seconds, 3),
        "republish_requests": republish_requests,
        "republish_writes": republish_writes,
        "nodes200_seconds": round(nodes_seconds, 2),
        "nodes200_writes": client.writes - writes,
        "nodes": nodes,
        "slices_stored": slices,
        "dropped_fields": sorted(sync.dropped_fields),
        "targets": {"republish_writes": 0},
    }


if __name__ == "__main__":
    sys.exit(main())
