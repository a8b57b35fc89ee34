"""The local control plane for people: ``python -m e2e.harness demo`` or ``... up``.

``demo`` builds (once) and starts a real control plane, publishes a fake 8×A100-40GB node the way
the driver does, applies the quickstart examples of ``deploy/examples/``, waits until the real
scheduler has placed every pod, prints what each claim got, and tears everything down. ``up``
starts the control plane and keeps it running until Ctrl-C, printing a kubeconfig to use.
Nothing is left behind, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable

from e2e.harness import binaries, controlplane, kube, objects

NODE = "demo-node"
NAMESPACE = "default"


def main(argv: list[str] | None = None) -> int:
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
            return _demo(client, args.gpus, step)
    except KeyboardInterrupt:
        print("\ninterrupted: control plane stopped, temporary files removed", file=sys.stderr)
        return 130


def _up(plane: controlplane.ControlPlane, step: Callable[[str], None]) -> int:
    step(f"control plane ready: export KUBECONFIG={plane.kubeconfig}  (Ctrl-C stops it)")
    while plane.running() == [p.name for p in plane.processes]:
        time.sleep(1)
    print(f"a component exited: only {plane.running()} still run", file=sys.stderr)
    return 1


def _demo(client: kube.Kube, gpus: str, step: Callable[[str], None]) -> int:
    step(f"publishing fake node {NODE} with {gpus} (devices from the driver's device builder)")
    objects.publish_fake_node(client, NODE, gpus=gpus)
    step("applying the DeviceClasses of deploy/deviceclasses.yaml")
    objects.apply_device_classes(client)
    documents = objects.example_documents()
    step(f"applying {len(documents)} objects from deploy/examples/")
    for body in documents:
        objects.create_object(client, NAMESPACE, body)
    pods = [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Pod"]
    for pod in pods:
        step(f"waiting for the scheduler to place {pod}")
        objects.wait_scheduled(client, NAMESPACE, pod)
    rows = [("POD", "CLAIM", "DEVICE", "ALLOCATED")]
    for pod in pods:
        for claim in kube.wait_for(
            functools.partial(objects.pod_claims, client, NAMESPACE, pod),
            what=f"claims of {pod}",
        ).values():
            for result in objects.allocation(client, NAMESPACE, claim):
                rows.append((pod, claim, result["device"], _detail(result)))
    print()
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        "\nNot shown yet: what each container gets on the node (the kubelet plugin is not built)."
    )
    return 0


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
