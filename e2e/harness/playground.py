"""A cluster to play with: the fake GPU node and the cluster controller the demo and ``up`` start.

`start_node` puts the driver on a running local control plane as on a real cluster: a fake node
(the fake kubelet, then our kubelet plugin on fake GPUs) and the cluster controller, which applies
the DeviceClasses. `hold` is ``make up``: it prints the commands to try (with kubectl built at the
control plane's version and the occupancy map ``gpu-dra`` on a ``PATH`` inside the work dir) and
keeps everything running until Ctrl-C or SIGTERM ends it (the caller then stops it all and removes
the work dir), or until a component exits by itself.
"""

from __future__ import annotations

import functools
import pathlib
import shlex
import sys
import time
from collections.abc import Callable

from e2e.harness import binaries, controlplane, kube, nodeagents, processes

DEVICE_CLASSES = ("gpu.dra.dev", "mig.gpu.dra.dev", "shared.gpu.dra.dev")
KUBECTL_SCRIPT = nodeagents.REPO / "hack" / "build-kubectl.sh"
Step = Callable[[str], None]


def start_node(
    plane: controlplane.ControlPlane,
    *,
    bin_dir: pathlib.Path,
    work_dir: pathlib.Path,
    name: str,
    gpus: str,
    metrics_port: int,
    step: Step,
) -> nodeagents.PluginNode:
    """Start fake node `name` with our plugin on fake `gpus` (its metrics on 127.0.0.1:
    `metrics_port`), and the cluster controller (a child of the node, stopped with it); return
    once the node's slices and the DeviceClasses exist. On an error what was started is stopped."""
    client = plane.client()
    node = nodeagents.PluginNode(
        plane=plane,
        client=client,
        bin_dir=bin_dir,
        work_dir=work_dir,
        name=name,
        gpus=gpus,
        extra_args=(f"--metrics-port={metrics_port}",),
    )
    try:
        step(f"starting fake node {name}: fake kubelet, then our plugin with fake:{gpus}")
        node.start()
        step("starting the cluster controller (it applies the DeviceClasses)")
        controller = processes.Process(
            "controller",
            [
                sys.executable,
                "-m",
                "controller",
                f"--kubeconfig={plane.kubeconfig}",
                "--extended-resource-name=gpu.dra.dev/gpu",
            ],
            log_dir=work_dir / "logs",
            cwd=nodeagents.REPO,
        )
        node.children.append(controller)
        controller.start()
        for device_class in DEVICE_CLASSES:
            kube.wait_for(
                functools.partial(
                    client.exists, f"/apis/resource.k8s.io/v1/deviceclasses/{device_class}"
                ),
                what=f"DeviceClass {device_class}",
            )
    except BaseException:
        node.stop()
        raise
    return node


def hold(
    plane: controlplane.ControlPlane,
    node: nodeagents.PluginNode,
    *,
    work_dir: pathlib.Path,
    kubectl: pathlib.Path,
    metrics_port: int,
) -> int:
    """Print how to use the cluster, then wait while every component runs; 1 when one exits."""
    tools = _tools_dir(work_dir, kubectl=kubectl)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    print(instructions(plane, node, work_dir=work_dir, tools=tools, metrics=metrics), flush=True)
    components = [*plane.processes, *node.children]
    while all(process.running() for process in components):
        time.sleep(1)
    gone = [f"{p.name} (exit code {p.exit_code()})" for p in components if not p.running()]
    print(f"stopping: {', '.join(gone)} exited; logs in {work_dir}", file=sys.stderr)
    for process in components:
        if not process.running():
            print(f"--- {process.name} ---\n{process.log_tail(20)}", file=sys.stderr)
    return 1


def instructions(
    plane: controlplane.ControlPlane,
    node: nodeagents.PluginNode,
    *,
    work_dir: pathlib.Path,
    tools: pathlib.Path,
    metrics: str,
) -> str:
    """What `hold` prints: the kubeconfig, and the first commands to try in another shell."""
    examples = nodeagents.REPO / "deploy" / "examples"
    return "\n".join(
        [
            "",
            f"Cluster ready: fake node {node.name} with fake:{node.gpus}, our kubelet plugin and",
            f"cluster controller. Ctrl-C here stops it all and removes {work_dir}.",
            "",
            "In another shell:",
            f"  export KUBECONFIG={plane.kubeconfig} PATH={tools}:$PATH",
            "  kubectl get deviceclasses,resourceslices",
            f"  kubectl apply -f {examples}/          # the quickstart claims and pods",
            "  kubectl get pods,resourceclaims -o wide",
            '  gpu-dra --kubeconfig "$KUBECONFIG"     # which pod holds which part of which GPU',
            f'  gpu-dra --kubeconfig "$KUBECONFIG" -o wide --metrics {metrics}   # and share usage',
            f"  curl -s {metrics} | grep ^gpu_dra_  # the plugin's metrics",
            f"  kubectl delete -f {examples}/",
            "",
        ]
    )


def build_kubectl() -> pathlib.Path:
    """kubectl at the control plane's version (``hack/build-kubectl.sh``: built once, cached)."""
    return binaries.build(KUBECTL_SCRIPT, ["kubectl"]) / "kubectl"


def _tools_dir(work_dir: pathlib.Path, *, kubectl: pathlib.Path) -> pathlib.Path:
    """A bin dir for the printed ``PATH``: kubectl, and the occupancy map of this clone as
    ``gpu-dra`` and as the kubectl plugin ``kubectl-gpu_dra`` (the virtualenv holds only the
    dependencies, so the console script is not installed: a wrapper runs ``python -m cli``)."""
    tools = work_dir / "bin"
    tools.mkdir()
    (tools / "kubectl").symlink_to(kubectl)
    pythonpath = shlex.quote(str(nodeagents.REPO))
    wrapper = (
        "#!/bin/sh\n"
        f'PYTHONPATH={pythonpath}${{PYTHONPATH:+:$PYTHONPATH}} exec {shlex.quote(sys.executable)} -m cli "$@"\n'
    )
    for name in ("gpu-dra", "kubectl-gpu_dra"):
        (tools / name).write_text(wrapper)
        (tools / name).chmod(0o755)
    return tools
