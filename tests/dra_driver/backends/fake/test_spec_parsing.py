"""Fake GPU specs: parsing, errors that list the known models, and the node topology.

Covers: good specs in several spellings, every kind of bad spec, stable per-node UUIDs, and the
8-GPU topology (two GPUs per PCIe root, two NUMA nodes).
"""

from __future__ import annotations

import pytest

from dra_driver import backends
from dra_driver.backends import errors
from dra_driver.backends.fake import specs


@pytest.mark.parametrize(
    ("spec", "products"),
    [
        pytest.param("1xL4", ["NVIDIA L4"], id="single"),
        pytest.param("2xH100-80GB,1xL4", ["NVIDIA H100 80GB HBM3"] * 2 + ["NVIDIA L4"], id="mixed"),
        pytest.param("1xa100-40gb", ["NVIDIA A100-SXM4-40GB"], id="case-insensitive"),
        pytest.param("1xH200", ["NVIDIA H200"], id="alias"),
        pytest.param("1xT4, 1xA100-80GB", ["Tesla T4", "NVIDIA A100-SXM4-80GB"], id="spaces"),
    ],
)
def test_good_specs(spec: str, products: list[str]) -> None:
    devices = specs.layout(specs.parse(spec), node_name="node-a")
    assert [gpu.product_name for gpu in devices] == products
    assert [gpu.index for gpu in devices] == list(range(len(products)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("8xA100-41GB", "unknown model 'A100-41GB'", id="unknown-model"),
        pytest.param("A100-40GB", "is not '<count>x<model>'", id="no-count"),
        pytest.param("0xL4", "is not '<count>x<model>'", id="zero"),
        pytest.param("2xL4,", "term '' is not", id="trailing-comma"),
        pytest.param("65xL4", "65 GPUs, at most 64", id="too-many"),
        pytest.param("", "term '' is not", id="empty"),
    ],
)
def test_bad_specs_name_the_problem_and_the_known_models(spec: str, message: str) -> None:
    with pytest.raises(errors.BackendUnavailableError) as raised:
        specs.parse(spec)
    assert message in str(raised.value)
    if "GPUs, at most" not in message:
        assert "known models: A100-40GB, A100-80GB, H100-80GB, H200-141GB, L4, T4" in str(
            raised.value
        )


def test_open_backend_rejects_unknown_kinds() -> None:
    with pytest.raises(errors.BackendUnavailableError, match="use 'nvml' for real GPUs"):
        backends.open_backend("cuda:1", node_name="n")


def test_uuids_are_stable_per_node_and_distinct_across_nodes() -> None:
    first = specs.layout(specs.parse("2xL4"), node_name="node-a")
    again = specs.layout(specs.parse("2xL4"), node_name="node-a")
    other = specs.layout(specs.parse("2xL4"), node_name="node-b")
    assert [g.uuid for g in first] == [g.uuid for g in again]
    assert not {g.uuid for g in first} & {g.uuid for g in other}
    assert len({g.uuid for g in first}) == 2
    assert all(g.uuid.startswith("GPU-") for g in first)


def test_eight_gpu_node_has_two_gpus_per_pcie_root_and_two_numa_nodes() -> None:
    devices = specs.layout(specs.parse("8xA100-40GB"), node_name="dgx")
    roots = [gpu.pcie_root for gpu in devices]
    assert [roots.count(root) for root in roots] == [2] * 8
    assert roots[0] == roots[1] != roots[2] == roots[3]
    assert [gpu.numa_node for gpu in devices] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert len({gpu.pci_bus_id for gpu in devices}) == 8


def test_small_node_has_one_numa_node() -> None:
    devices = specs.layout(specs.parse("2xL4"), node_name="n")
    assert [gpu.numa_node for gpu in devices] == [0, 0]
