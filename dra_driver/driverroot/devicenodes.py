"""The device nodes a container needs: control nodes, one per GPU, and MIG capability nodes.

- Control nodes, once per container: ``/dev/nvidiactl`` and, for CUDA, ``/dev/nvidia-uvm`` are
  required; ``/dev/nvidia-uvm-tools`` and ``/dev/nvidia-modeset`` are added where they exist.
- A GPU: ``/dev/nvidia<minor>`` (required).
- A MIG device: its parent GPU's node, plus the capability nodes of its GPU instance and compute
  instance, ``/dev/nvidia-caps/nvidia-cap<N>``. ``N`` is the ``DeviceFileMinor`` in
  ``<proc>/driver/nvidia/capabilities/gpu<minor>/mig/gi<g>/access`` and ``.../gi<g>/ci<c>/access``;
  the major is ``nvidia-caps``'s in ``<proc>/devices``. These nodes are given with type, major and
  minor, so the runtime makes them in the container even where the host has not created them yet
  (``nvidia-modprobe`` makes them on first use).

Existing nodes are named by their host path (the runtime reads type and numbers from it). A
required node that does not exist raises `errors.IncompleteDriverRootError`: the claim fails and the
next prepare looks again, so a node whose driver has not made its nodes yet never gets a spec
without them.
"""

from __future__ import annotations

import os
import re

from dra_driver.cdi import spec
from dra_driver.driverroot import errors, roots

REQUIRED_CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm")
CONTROL_NODES = (
    "/dev/nvidia-modeset",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidiactl",
)
"""In the order of NVIDIA's toolkit (by path)."""

_MINOR = re.compile(r"^DeviceFileMinor:\s*(\d+)\s*$", re.MULTILINE)


def control_nodes(dev: roots.Root) -> tuple[spec.DeviceNode, ...]:
    """The control nodes that exist; raises if a required one is missing."""
    nodes = []
    for path in CONTROL_NODES:
        if dev.exists(path):
            nodes.append(spec.DeviceNode(path=path, host_path=dev.on_host(path)))
        elif path in REQUIRED_CONTROL_NODES:
            raise errors.IncompleteDriverRootError(_missing(dev, path))
    return tuple(nodes)


def gpu_node(dev: roots.Root, minor: int) -> spec.DeviceNode:
    path = f"/dev/nvidia{minor}"
    if not dev.exists(path):
        raise errors.IncompleteDriverRootError(_missing(dev, path))
    return spec.DeviceNode(path=path, host_path=dev.on_host(path))


def mig_nodes(
    proc: os.PathLike[str], *, gpu_minor: int, gpu_instance: int, compute_instance: int
) -> tuple[spec.DeviceNode, spec.DeviceNode]:
    """The capability nodes of a MIG device (GPU instance first, then compute instance)."""
    major = caps_major(proc)
    gi = f"driver/nvidia/capabilities/gpu{gpu_minor}/mig/gi{gpu_instance}"
    access = (f"{gi}/access", f"{gi}/ci{compute_instance}/access")
    first, second = (_cap_node(major, _cap_minor(os.path.join(proc, path))) for path in access)
    return first, second


def caps_major(proc: os.PathLike[str]) -> int:
    """The major number of ``nvidia-caps`` from ``<proc>/devices``."""
    path = os.path.join(proc, "devices")
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except OSError as err:
        raise errors.MigCapabilityError(f"cannot read {path}: {err.strerror}") from err
    in_characters = False
    for line in lines:
        if line.strip() == "Character devices:":
            in_characters = True
        elif line.strip() == "Block devices:":
            in_characters = False
        elif in_characters and line.split()[1:] == ["nvidia-caps"]:
            return int(line.split()[0])
    raise errors.MigCapabilityError(
        f"{path} lists no nvidia-caps character device (is the NVIDIA driver loaded with MIG?)"
    )


def _cap_minor(path: str) -> int:
    try:
        with open(path) as file:
            text = file.read()
    except OSError as err:
        raise errors.MigCapabilityError(
            f"MIG capability file {path} cannot be read: {err.strerror}"
        ) from err
    found = _MINOR.search(text)
    if found is None:
        raise errors.MigCapabilityError(f"MIG capability file {path} has no DeviceFileMinor")
    return int(found.group(1))


def _cap_node(major: int, minor: int) -> spec.DeviceNode:
    return spec.DeviceNode(
        path=f"/dev/nvidia-caps/nvidia-cap{minor}", type="c", major=major, minor=minor
    )


def _missing(dev: roots.Root, path: str) -> str:
    where = f" (read at {dev.seen(path)})" if str(dev.seen(path)) != dev.on_host(path) else ""
    return f"device node {dev.on_host(path)}{where} does not exist (is the NVIDIA driver loaded?)"
