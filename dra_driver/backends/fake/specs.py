"""Parse ``fake:<spec>`` strings and lay the fake GPUs out on a realistic node topology.

Grammar: ``<count>x<model>[,<count>x<model>...]``, e.g. ``8xA100-40GB`` or ``2xH100-80GB,1xL4``;
models are those of `catalog.MODELS` (case-insensitive). GPUs are numbered in spec order.

Topology, as on common 8-GPU servers: two GPUs share a PCIe root complex, and a node of four or
more GPUs has two NUMA nodes, the first half of the GPUs on node 0. UUIDs are derived from the node
name and the index, so they are stable across restarts and differ between nodes.
"""

from __future__ import annotations

import re
import uuid

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.fake import catalog

MAX_GPUS = 64
"""More GPUs than any server has; a larger spec is almost certainly a typo."""

_ALIASES = {"H200": "H200-141GB"}
_TERM = re.compile(r"^(?P<count>[1-9][0-9]*)x(?P<model>[A-Za-z0-9-]+)$")
_UUID_NAMESPACE = uuid.UUID("6f1c2b1e-7d4a-4c55-9a53-2f6d0d9a7e10")


def parse(spec: str) -> list[catalog.GpuModel]:
    """The models of a spec, one entry per GPU, in index order."""
    models: list[catalog.GpuModel] = []
    for term in spec.split(","):
        match = _TERM.match(term.strip())
        if match is None:
            raise errors.BackendUnavailableError(
                f"bad fake GPU spec {spec!r}: term {term!r} is not '<count>x<model>' "
                f"(e.g. 'fake:8xA100-40GB'); known models: {known_models()}"
            )
        models.extend([_model(match["model"], spec)] * int(match["count"]))
    if len(models) > MAX_GPUS:
        raise errors.BackendUnavailableError(
            f"bad fake GPU spec {spec!r}: {len(models)} GPUs, at most {MAX_GPUS}"
        )
    return models


def known_models() -> str:
    return ", ".join([*catalog.MODELS, *_ALIASES])


def _model(name: str, spec: str) -> catalog.GpuModel:
    by_lower = {key.lower(): key for key in [*catalog.MODELS, *_ALIASES]}
    key = by_lower.get(name.lower())
    if key is None:
        raise errors.BackendUnavailableError(
            f"bad fake GPU spec {spec!r}: unknown model {name!r}; known models: {known_models()}"
        )
    return catalog.MODELS[_ALIASES.get(key, key)]


def gpu_uuid(node_name: str, index: int) -> str:
    return f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{node_name}/gpu/{index}')}"


def mig_uuid(parent_uuid: str, serial: int) -> str:
    return f"MIG-{uuid.uuid5(_UUID_NAMESPACE, f'{parent_uuid}/mig/{serial}')}"


def layout(models: list[catalog.GpuModel], *, node_name: str) -> list[hardware.GpuInfo]:
    """Give each model of a parsed spec its index, identity and place in the topology."""
    count = len(models)
    numa_nodes = 2 if count >= 4 else 1
    return [
        _gpu(model, index=index, node_name=node_name, numa_node=index * numa_nodes // count)
        for index, model in enumerate(models)
    ]


def _gpu(
    model: catalog.GpuModel, *, index: int, node_name: str, numa_node: int
) -> hardware.GpuInfo:
    root = index // 2  # two GPUs per PCIe root complex
    domain, root_bus = divmod(root, 4)
    root_bus *= 0x40
    bus = root_bus + (0x07 if index % 2 == 0 else 0x0F)
    return hardware.GpuInfo(
        index=index,
        minor=index,
        uuid=gpu_uuid(node_name, index),
        product_name=model.product_name,
        brand=model.brand,
        architecture=model.architecture,
        cuda_compute_capability=model.cuda_compute_capability,
        driver_version=catalog.DRIVER_VERSION,
        cuda_driver_version=catalog.CUDA_DRIVER_VERSION,
        memory_bytes=model.memory_bytes,
        multiprocessors=model.multiprocessors,
        pci_bus_id=f"{domain:04x}:{bus:02x}:00.0",
        pcie_root=f"pci{domain:04x}:{root_bus:02x}",
        numa_node=numa_node,
        mig_profiles=model.mig_profiles,
    )
