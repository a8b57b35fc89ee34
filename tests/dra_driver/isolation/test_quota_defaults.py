"""The context reserve and allocation rounding the plugin writes into a claim's quota config.

Covers: the value of each GPU model in the table (A100, H100, H200, L4, T4) and of any other GPU
(the default, the largest), matched on NVML's product names; a claim over several GPU models
getting the largest of each; the quota config carrying both keys when the GPU models are given,
and neither without them.
"""

from __future__ import annotations

import pathlib

import pytest

from dra_driver.isolation import quotadefaults, quotas

MIB = 1 << 20
GPU_A = "GPU-fa4e0000-0000-0000-0000-000000000000"
GPU_B = "GPU-fa4e0000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("product", "reserve_mib"),
    [
        pytest.param("NVIDIA A100-SXM4-80GB", 512, id="A100"),
        pytest.param("NVIDIA A100-PCIE-40GB", 512, id="A100-PCIe"),
        pytest.param("NVIDIA H100 80GB HBM3", 544, id="H100"),
        pytest.param("NVIDIA H100 PCIe", 544, id="H100-PCIe"),
        pytest.param("NVIDIA H200", 544, id="H200"),
        pytest.param("NVIDIA L4", 224, id="L4"),
        pytest.param("Tesla T4", 192, id="T4"),
        pytest.param("NVIDIA L40S", 576, id="L40S-is-not-L4"),
        pytest.param("NVIDIA GH200 480GB", 576, id="GH200-unknown"),
        pytest.param(None, 576, id="unknown"),
    ],
)
def test_each_gpu_model_has_its_reserve(product: str | None, reserve_mib: int) -> None:
    found = quotadefaults.for_product(product)
    assert found == quotadefaults.QuotaDefaults(reserve_mib * MIB, 512)


def test_the_default_is_the_largest() -> None:
    largest = max(item.context_reserve_bytes for item in quotadefaults.TABLE.values())
    assert quotadefaults.DEFAULT.context_reserve_bytes >= largest


def test_a_claim_over_several_models_gets_the_largest_of_each() -> None:
    found = quotadefaults.for_products(["Tesla T4", "NVIDIA A100-SXM4-80GB"])
    assert found.context_reserve_bytes == 512 * MIB


def test_the_quota_config_carries_the_models_defaults(tmp_path: pathlib.Path) -> None:
    directory = quotas.write(
        tmp_path,
        "uid",
        {GPU_A: 4 << 30, GPU_B: 4 << 30},
        products={GPU_A: "NVIDIA L4", GPU_B: "Tesla T4"},
    )
    lines = (directory / quotas.FILE).read_text().splitlines()
    assert f"context_reserve_bytes={224 * MIB}" in lines
    assert "round_bytes=512" in lines


def test_without_models_the_config_has_neither_key(tmp_path: pathlib.Path) -> None:
    directory = quotas.write(tmp_path, "uid", {GPU_A: 4 << 30})
    text = (directory / quotas.FILE).read_text()
    assert "context_reserve_bytes" not in text
    assert "round_bytes" not in text
