"""Counter sets: how the scheduler itself keeps a GPU from being over-committed (full mode).

Each GPU has one counter set, ``gpu-<i>-counters``:

| counter | total | consumed by |
|---|---|---|
| ``memory`` (bytes), ``multiprocessors`` | the GPU's | full GPU and shared device: all; MIG: its profile's |
| ``memory-slice-<k>``, k = 0..7 (MIG-capable GPUs) | 1 | full GPU and shared device: all; MIG: the slices its placement covers |
| ``mig-<profile>-instances`` (profiles capped below their placements, e.g. ``+me``) | the cap | one per MIG device of that profile |

So a full GPU excludes everything else on its GPU; a MIG device excludes the full GPU, the shared
device and every overlapping placement; the shared device (charged once while any share exists)
excludes the full GPU and all MIG devices. Totals are at least the peak that any valid MIG layout
uses (`layouts.peak_sums`), so the counters never forbid a layout the hardware allows.
"""

from __future__ import annotations

from dra_driver import hardware, layouts
from dra_driver.slices import naming

Amounts = dict[str, int]


def capped_profiles(gpu: hardware.GpuInfo) -> list[hardware.MigProfile]:
    """Profiles whose instance cap is lower than what their placements alone would allow."""
    return [p for p in gpu.mig_profiles if p.max_instances < _max_disjoint(p.placements)]


def totals(gpu: hardware.GpuInfo) -> Amounts:
    """What the GPU's counter set holds."""
    peaks = layouts.peak_sums(gpu.mig_profiles) if gpu.mig_capable else {}
    amounts = {
        "memory": max(gpu.memory_bytes, peaks.get("memory", 0)),
        "multiprocessors": max(gpu.multiprocessors, peaks.get("multiprocessors", 0)),
    }
    if gpu.mig_capable:
        amounts.update({naming.memory_slice_counter(k): 1 for k in range(hardware.MEMORY_SLICES)})
        for profile in capped_profiles(gpu):
            amounts[naming.instances_counter(profile.name)] = profile.max_instances
    return amounts


def whole_gpu_cost(gpu: hardware.GpuInfo) -> Amounts:
    """The cost of the full GPU and of the shared device: everything, except instance caps."""
    return {
        name: amount
        for name, amount in totals(gpu).items()
        if not (name.startswith("mig-") and name.endswith("-instances"))
    }


def mig_cost(
    gpu: hardware.GpuInfo, profile: hardware.MigProfile, placement: hardware.Placement
) -> Amounts:
    cost = {"memory": profile.memory_bytes, "multiprocessors": profile.multiprocessors}
    cost.update({naming.memory_slice_counter(k): 1 for k in placement.memory_slices})
    if profile in capped_profiles(gpu):
        cost[naming.instances_counter(profile.name)] = 1
    return cost


def _max_disjoint(placements: tuple[hardware.Placement, ...]) -> int:
    """How many of `placements` fit side by side (greedy by end is optimal for intervals)."""
    count, end = 0, -1
    for placement in sorted(placements, key=lambda p: p.start + p.size):
        if placement.start >= end:
            count, end = count + 1, placement.start + placement.size
    return count
