"""The local control plane for people: ``python -m e2e.harness demo`` or ``... up``.

``demo`` builds (once) and starts a real control plane, starts a fake node (the fake kubelet made
of the kubelet's own DRA code) with our kubelet plugin on fake 8×A100-40GB GPUs and our cluster
controller (which applies the DeviceClasses), applies the
quickstart examples of ``deploy/examples/``, waits until the real scheduler has placed every pod and
the plugin has prepared it, prints what each claim got and what its container gets, and tears
everything down. ``up`` starts the control plane and keeps it running until Ctrl-C, printing a
kubeconfig to use. Nothing is left behind, also on Ctrl-C.
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

from e2e.harness import binaries, controlplane, kube, nodeagents, objects, processes

NODE = "demo-node"
NAMESPACE = "default"


def _interrupt(signum: int, frame: object) -> None:
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
    try:
        with (
            tempfile.TemporaryDirectory(prefix="gpu-dra-demo-") as work,
            controlplane.ControlPlane(
                bin_dir=bin_dir,
                work_dir=pathlib.Path(work),
                progress=step,
            ) as plane,
        ):
            client = kube.Kube(server=plane.server, token=plane.token, ca_file=str(plane.ca_file))
            if args.command == "up":
                return _up(plane, step)
            node = nodeagents.PluginNode(
                plane=plane,
                client=client,
                bin_dir=bin_dir,
                work_dir=pathlib.Path(work) / "node",
                name=NODE,
                gpus=args.gpus,
            )
            try:
                return _demo(client, node, step)
            finally:
                node.stop()
    except KeyboardInterrupt:
        print("\ninterrupted: control plane stopped, temporary files removed", file=sys.stderr)
        return 130


def _up(plane: controlplane.ControlPlane, step: Callable[[str], None]) -> int:
    step(f"control plane ready: export KUBECONFIG={plane.kubeconfig}  (Ctrl-C stops it)")
    while plane.running() == [p.name for p in plane.processes]:
        time.sleep(1)
    print(f"a component exited: only {plane.running()} still run", file=sys.stderr)
    return 1


def _demo(client: kube.Kube, node: nodeagents.PluginNode, step: Callable[[str], None]) -> int:
    step(f"starting fake node {NODE}: fake kubelet, then our plugin with fake:{node.gpus}")
    node.start()
    step("starting the cluster controller (it applies the DeviceClasses)")
    controller = processes.Process(
        "controller",
        [
            sys.executable,
            "-m",
            "controller",
            f"--kubeconfig={node.plane.kubeconfig}",
            "--extended-resource-name=gpu.dra.dev/gpu",
        ],
        log_dir=node.work_dir / "logs",
        cwd=nodeagents.REPO,
    )
    node.children.append(controller)  # stopped with the node agents
    controller.start()
    for name in ("gpu.dra.dev", "mig.gpu.dra.dev", "shared.gpu.dra.dev"):
        kube.wait_for(
            functools.partial(client.exists, f"/apis/resource.k8s.io/v1/deviceclasses/{name}"),
            what=f"DeviceClass {name}",
        )
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
