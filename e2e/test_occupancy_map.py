"""The occupancy map (``gpu-dra``) on the local control plane, for the quickstart claims.

Covers: the quickstart examples of ``deploy/examples/`` allocated by the real kube-scheduler on
a fake 8×A100-40GB node that runs our plugin (slices published by the plugin, claims prepared
through the fake kubelet); then the real command (``python -m cli``, what the ``gpu-dra`` console
script runs) with the cluster's kubeconfig and the plugin's metrics URL draws, as the claims'
allocations say: which pod holds which device, the MIG slice at its placement with the other
slices free and what still fits, both shares' memory and cores against the GPU's 40Gi and 100%
with their usage against their limits from the plugin's metrics; the JSON says the same; ``-n``
of another namespace leaves nothing; and README.md's map is this command's output for these
claims (node, namespace and generated claim names aside).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from e2e.conftest import NodeFactory, Scenario
from e2e.harness import controlplane, kube, nodeagents, objects

pytestmark = pytest.mark.e2e

GIB = 2**30


def _gpu_dra(plane: controlplane.ControlPlane, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", f"--kubeconfig={plane.kubeconfig}", *args],
        cwd=nodeagents.REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": ""},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _apply_examples(scenario: Scenario, node: str) -> dict[str, dict[str, Any]]:
    """Apply every example onto `node`; pod → {"claim": name, "devices": [allocation results]}."""
    client, ns = scenario.client, scenario.namespace
    documents = objects.example_documents()
    for doc in documents:
        body = copy.deepcopy(doc)
        if body["kind"] == "Pod":
            body["spec"]["nodeSelector"] = {objects.HOSTNAME: node}
        objects.create_object(client, ns, body)
    held = {}
    for pod in (d["metadata"]["name"] for d in documents if d["kind"] == "Pod"):
        objects.wait_scheduled(client, ns, pod)
        (claim,) = objects.pod_claims(client, ns, pod).values()
        held[pod] = {"claim": claim, "devices": objects.allocation(client, ns, claim)}
    return held


def test_the_map_of_the_quickstart_claims(scenario: Scenario, plugin_nodes: NodeFactory) -> None:
    metrics_port = controlplane.free_port()
    node = plugin_nodes("8xA100-40GB", extra_args=(f"--metrics-port={metrics_port}",))
    ns = scenario.namespace
    held = _apply_examples(scenario, node.name)
    for pod in held:
        kube.wait_for(functools.partial(node.prepared_record, ns, pod), what=f"{pod} prepared")
    plane = scenario.plane
    assert isinstance(plane, controlplane.ControlPlane)
    metrics = f"--metrics=127.0.0.1:{metrics_port}"
    text = _gpu_dra(plane, f"--node={node.name}", metrics)
    lines = text.splitlines()

    assert lines[0].startswith(f"{node.name}  8 GPUs: 3 whole, 1 MIG, 1 shared, 3 free")
    for pod, what in held.items():  # every pod's line names its device and its claim
        (result,) = what["devices"]
        line = next(ln for ln in lines if f"{ns}/" in ln and re.search(rf"\b{pod}\b", ln))
        assert line.split()[0] == result["device"], line
        assert line.endswith(f"claim {what['claim']}") or f"claim {what['claim']}  " in line

    (mig,) = held["mig-pod"]["devices"]
    start = int(mig["device"].rsplit("-", 1)[1])
    index = int(mig["device"].split("-")[1])
    block = text.split(f"  GPU {index}  MIG")[1].split("\n\n")[0].splitlines()
    cells = [c.strip() for c in block[2].split("│")[1:-1]]
    assert cells == ["1g.5gb" if k == start else "free" for k in range(8)]
    assert block[4].split()[0] == "fits"
    assert "7g.40gb" not in block[4]
    assert "1g.5gb @" in block[4]

    shares = [ln for ln in lines if "-shared  10Gi, 25%" in ln]
    assert len(shares) == 2, text
    assert all(ln.endswith("uses 0 of 10Gi") for ln in shares), shares
    assert re.search(r"memory  [█▓]{20}░{20}  20Gi of 40Gi", text), text
    assert re.search(r"cores   [█▓]{20}░{20}  50% of 100%", text), text

    document = json.loads(_gpu_dra(plane, f"--node={node.name}", "-o", "json", metrics))
    (node_json,) = document["nodes"]
    gpus = node_json["gpus"]
    assert sorted(g["serving"] for g in gpus) == sorted(
        ["whole"] * 3 + ["mig", "shares"] + ["free"] * 3
    )
    mig_gpu = gpus[index]["mig"]
    assert [h["device"] for h in mig_gpu["held"]] == [mig["device"]]
    assert mig_gpu["held"][0]["holders"][0]["pods"][0]["name"] == "mig-pod"
    assert mig_gpu["freeSlices"] == [k for k in range(8) if k != start]
    (shared,) = [g["shares"] for g in gpus if g["serving"] == "shares"]
    assert (shared["memoryAllocatedBytes"], shared["coresAllocated"]) == (20 * GIB, 50)
    assert [s["usage"] for s in shared["shares"]] == [{"usedBytes": 0, "limitBytes": 10 * GIB}] * 2
    timesliced = next(
        g
        for g in gpus
        if g["whole"] and g["whole"]["holders"] and len(g["whole"]["holders"][0]["pods"]) == 2
    )
    assert {p["name"] for p in timesliced["whole"]["holders"][0]["pods"]} in (
        {"timesliced-pod-a", "timesliced-pod-b"},
        {"mps-pod-a", "mps-pod-b"},
    )

    elsewhere = _gpu_dra(plane, f"--node={node.name}", "-n", "kube-system")
    assert elsewhere.startswith("no GPUs of driver gpu.dra.dev found")

    _check_readme(text, node=node.name, namespace=ns)


README_BLOCK = re.compile(r"(```\n)(demo-node  8 GPUs:.*?)(```)", re.S)


def _as_demo(text: str, *, node: str, namespace: str) -> str:
    """The picture as the demo's names would give it: node ``demo-node``, namespace default."""
    return text.replace(node, "demo-node").replace(f"{namespace}/", "default/")


def _blocks(text: str) -> list[str]:
    """The picture's GPU blocks, in an order and with GPU indices and claim-name suffixes that
    do not depend on which GPU the scheduler happened to pick for which claim first."""
    text = re.sub(r"(claim \S+)-[a-z0-9]{5}\b", r"\1-xxxxx", text)
    text = re.sub(r"\bgpu-[0-9]+", "gpu-N", re.sub(r"\bGPU [0-9]+", "GPU N", text))
    return sorted(block.strip("\n") for block in text.split("\n\n"))


def _check_readme(text: str, *, node: str, namespace: str) -> None:
    """README.md shows this command's picture for the demo's claims.

    ``GPU_DRA_UPDATE_README=1`` writes this run's picture there.
    """
    path = nodeagents.REPO / "README.md"
    produced = _as_demo(text, node=node, namespace=namespace)
    assert "note:" not in produced, produced
    readme = path.read_text()
    match = README_BLOCK.search(readme)
    assert match, "README.md has no occupancy map of the demo"
    if os.environ.get("GPU_DRA_UPDATE_README"):
        path.write_text(readme[: match.start(2)] + produced + readme[match.end(2) :])
        return
    assert _blocks(match[2]) == _blocks(produced), produced
