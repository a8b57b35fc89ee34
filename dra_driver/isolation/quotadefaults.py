"""What a CUDA process costs on a GPU before it allocates anything, per GPU model: the values of
the quota config's ``context_reserve_bytes`` and ``round_bytes`` (see ``preload/config.h``).

`quotas` writes them into a claim's ``quota.conf``; the preload library charges the reserve once
per process and device, at its first allocation there, and counts every allocation rounded up to
``round_bytes`` (allocations of 2 MiB or more in whole 2 MiB pages, ``preload/charges.c``).

A context's own device memory is mostly the local memory the driver reserves for thread stacks
(the per-thread stack size times every thread the GPU can hold at once), the device-side
``malloc`` heap, the ``printf`` buffer, and the driver's own structures and loaded module code.
The first three follow from documented figures (cited next to each); the last is not documented
anywhere we could cite, so it is an estimate, chosen high. Each total is rounded up to 32 MiB.
A GPU model not in the table gets `DEFAULT`, sized for a larger GPU than any listed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

MIB = 1 << 20

STACK_BYTES_PER_THREAD = 1024
"""The default ``CU_LIMIT_STACK_SIZE`` (what ``cuCtxGetLimit`` reports before a program changes
it). The driver reserves it for every thread the GPU can hold resident (measured default;
``cuCtxSetLimit`` documents the limit, not its default)."""
MALLOC_HEAP_BYTES = 8 * MIB
"""CUDA C++ Programming Guide, "Dynamic Global Memory Allocation": the device heap's default
size is 8 MB."""
PRINTF_FIFO_BYTES = 1 * MIB
"""The default ``CU_LIMIT_PRINTF_FIFO_SIZE`` (1 MiB, as ``cuCtxGetLimit`` reports it; estimate)."""
SMALL_ALLOCATION_ALIGNMENT = 512
"""``round_bytes``. The CUDA C++ Programming Guide ("Device Memory Accesses") promises
allocations aligned to at least 256 bytes; consecutive small ``cuMemAlloc`` results are 512
bytes apart on current drivers (measured by others; estimate). Allocations of 2 MiB or more
take whole 2 MiB pages, which the library applies itself."""


@dataclasses.dataclass(frozen=True)
class QuotaDefaults:
    context_reserve_bytes: int
    """Charged once per process and device: the CUDA context's own memory."""
    round_bytes: int
    """Every allocation is counted rounded up to a multiple of this."""


@dataclasses.dataclass(frozen=True)
class _Model:
    pattern: str
    """A regular expression matched against NVML's product name."""
    multiprocessors: int
    threads_per_multiprocessor: int
    driver_bytes: int
    """The driver's own structures and module code: an estimate (see the module docstring)."""


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def _defaults(model: _Model) -> QuotaDefaults:
    stacks = model.multiprocessors * model.threads_per_multiprocessor * STACK_BYTES_PER_THREAD
    reserve = stacks + MALLOC_HEAP_BYTES + PRINTF_FIFO_BYTES + model.driver_bytes
    return QuotaDefaults(_round_up(reserve, 32 * MIB), SMALL_ALLOCATION_ALIGNMENT)


# Threads per multiprocessor: CUDA C++ Programming Guide, "Compute Capabilities", maximum
# resident threads per SM: 2048 for 8.0 and 9.0, 1536 for 8.9, 1024 for 7.5.
_MODELS = (
    # GH100 in the H200: 132 SMs like the H100 SXM5 (the H200 datasheet gives no SM count; the
    # larger of the H100's two configurations, so an estimate on the high side). CC 9.0.
    _Model(r"\bH200\b", 132, 2048, 256 * MIB),
    # NVIDIA H100 Tensor Core GPU Architecture whitepaper: 132 SMs (SXM5), 114 (PCIe); the
    # larger for both. CC 9.0.
    _Model(r"\bH100\b", 132, 2048, 256 * MIB),
    # NVIDIA A100 Tensor Core GPU Architecture whitepaper: 108 SMs. CC 8.0.
    _Model(r"\bA100\b", 108, 2048, 256 * MIB),
    # NVIDIA Ada GPU Architecture whitepaper, L4: 58 SMs (7,424 CUDA cores). CC 8.9.
    _Model(r"\bL4\b", 58, 1536, 128 * MIB),
    # NVIDIA Turing GPU Architecture whitepaper, Tesla T4: 40 SMs (2,560 CUDA cores). CC 7.5.
    _Model(r"\bT4\b", 40, 1024, 128 * MIB),
)

DEFAULT = _defaults(_Model("", 148, 2048, 256 * MIB))
"""Any other GPU: as for 148 SMs (a B200, more than any model above) at 2048 threads each."""

TABLE: dict[str, QuotaDefaults] = {
    "H200": _defaults(_MODELS[0]),
    "H100": _defaults(_MODELS[1]),
    "A100": _defaults(_MODELS[2]),
    "L4": _defaults(_MODELS[3]),
    "T4": _defaults(_MODELS[4]),
}
"""The resulting values by model, for reading and documentation."""


def for_product(product_name: str | None) -> QuotaDefaults:
    """The defaults of the GPU NVML names `product_name` (e.g. ``NVIDIA A100-SXM4-80GB``)."""
    for model in _MODELS:
        if product_name is not None and re.search(model.pattern, product_name):
            return _defaults(model)
    return DEFAULT


def for_products(product_names: Iterable[str | None]) -> QuotaDefaults:
    """One config serves all of a claim's GPUs: the largest value of each key among them."""
    found = [for_product(name) for name in product_names] or [DEFAULT]
    return QuotaDefaults(
        max(item.context_reserve_bytes for item in found),
        max(item.round_bytes for item in found),
    )
