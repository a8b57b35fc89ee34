"""The local control plane for people: ``python -m e2e.harness demo`` or ``... up``.

``demo`` builds (once) and starts a real control plane, starts a fake node (the fake kubelet made
of the kubelet's own DRA code) with our kubelet plugin on fake 8×A100-40GB GPUs and our cluster
controller (which applies the DeviceClasses), applies the
quickstart examples of ``deploy/examples/``, waits until the real scheduler has placed every pod and
the plugin has prepared it, prints what each claim got and what its container gets, and tears
everything down. ``up`` (``make up``) starts the same cluster without the examples and keeps it
running until Ctrl-C or SIGTERM, printing the kubeconfig and the first commands to try
(`playground`). Nothing is left behind, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import signal
import sys
import tempfile
import time
from collections.abc import Callable

from e2e.harness import binaries, controlplane, kube, nodeagents, objects, playground

NODE = "demo-node"
NAMESPACE = "default"


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second Ctrl-C must not cut the clean-up short (that would leave the work dir).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C, and SIGTERM alike, end the run through the same clean-up (a shell that started us
    # in the background may have ignored SIGINT for us: take it back).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m e2e.harness", description=__doc__)
    parser.add_argument("command", choices=["demo", "up"])
    parser.add_argument("--gpus", default="8xA100-40GB", help="fake GPUs of the demo node")
    args = parser.parse_args(argv)
    step = _stepper()
    step("building the control plane (first time only: a few minutes, then cached)")
    bin_dir = binaries.ensure_built()
    kubectl = playground.build_kubectl() if args.command == "up" else None
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"gpu-dra-{args.command}-") as work,
            controlplane.ControlPlane(
                bin_dir=bin_dir,
                work_dir=pathlib.Path(work),
                progress=step,
            ) as plane,
        ):
            metrics_port = controlplane.free_port()
            node = playground.start_node(
                plane,
                bin_dir=bin_dir,
                work_dir=pathlib.Path(work) / "node",
                name=NODE,
                gpus=args.gpus,
                metrics_port=metrics_port,
                step=step,
            )
            try:
                if kubectl is not None:
                    return playground.hold(
                        plane,
                        node,
                        work_dir=pathlib.Path(work),
                        kubectl=kubectl,
                        metrics_port=metrics_port,
                    )
                return _demo(plane.client(), node, step)
            finally:
                node.stop()
    except KeyboardInterrupt:
        print("\ninterrupted: cluster stopped, temporary files removed", file=sys.stderr)
        return 130


def _demo(client: kube.Kube, node: nodeagents.PluginNode, step: Callable[[str], None]) -> int:
    documents = objects.example_documents()
    step(f"applying {len(documents)} objects from deploy/examples/")
    for body in documents:
        objects.create_object(client, NAMESPACE, body)
    pods = [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Pod"]
    records = {}
    for pod in pods:
        step(f"waiting for the scheduler to place {pod} and the plugin to prepare it")
        objects.wait_scheduled(client, NAMESPACE, pod)
        records[pod] = kube.wait_for(
            functools.partial(node.record, NAMESPACE, pod), what=f"{pod} prepared", timeout=60
        )
    rows = [("POD", "CLAIM", "DEVICE", "ALLOCATED", "CONTAINER GETS")]
    for pod in pods:
        for claim in kube.wait_for(
            functools.partial(objects.pod_claims, client, NAMESPACE, pod),
            what=f"claims of {pod}",
        ).values():
            for result in objects.allocation(client, NAMESPACE, claim):
                gets = _container_gets(records[pod], result["device"])
                rows.append((pod, claim, result["device"], _detail(result), gets))
    print()
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    step("cleaning up")
    return 0


def _container_gets(record: objects.Obj, device: str) -> str:
    """The env our CDI spec gave the container for `device`, in short."""
    if record.get("error"):
        return f"prepare failed: {record['error']}"
    prefix = "GPU_DRA_" + device.upper().replace("-", "_") + "_"
    env = dict(
        item.split("=", 1)
        for container in record["containers"].values()
        for item in container.get("env", [])
    )
    shown = []
    for key in ("UUID", "MEMORY_LIMIT", "CORES", "TIMESLICE"):
        value = env.get(prefix + key)
        if value:
            shown.append(f"{key.lower()}={value[:12] + '…' if key == 'UUID' else value}")
    if "CUDA_MPS_PIPE_DIRECTORY" in env:
        shown.append("mps daemon " + env["CUDA_MPS_PIPE_DIRECTORY"].rsplit("/", 1)[-1])
    return ", ".join(shown) or "nothing"


def _detail(result: objects.Obj) -> str:
    consumed = result.get("consumedCapacity")
    if not consumed:
        return "whole device"
    share = result.get("shareID", "")[:8]
    return f"share {share}: " + ", ".join(f"{k}={v}" for k, v in sorted(consumed.items()))


def _stepper() -> Callable[[str], None]:
    start = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - start:5.1f}s] {message}", file=sys.stderr, flush=True)

    return step


if __name__ == "__main__":
    sys.exit(main())
