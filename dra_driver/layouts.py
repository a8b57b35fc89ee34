"""MIG layout rules: which sets of MIG placements can exist on one GPU at the same time.

A layout is valid when no two placements share a memory slice and no profile has more instances
than its `max_instances` (e.g. one ``1g.5gb+me``). These are the hardware's rules as NVML enforces
them; the device builder turns them into ResourceSlice counters and the tests check that the
scheduler's counter arithmetic and these rules agree in both directions.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable, Iterator

from dra_driver import hardware

Slot = tuple[hardware.MigProfile, hardware.Placement]


def candidates(profiles: Iterable[hardware.MigProfile]) -> list[Slot]:
    """Every (profile, placement) pair of a GPU."""
    return [(profile, placement) for profile in profiles for placement in profile.placements]


def is_valid(layout: Iterable[Slot]) -> bool:
    """True if all of `layout` can exist on one GPU at once."""
    chosen = list(layout)
    counts = collections.Counter(profile.profile_id for profile, _ in chosen)
    if any(counts[profile.profile_id] > profile.max_instances for profile, _ in chosen):
        return False
    used: set[int] = set()
    for _, placement in chosen:
        if used.intersection(placement.memory_slices):
            return False
        used.update(placement.memory_slices)
    return True


def maximal_layouts(profiles: tuple[hardware.MigProfile, ...]) -> Iterator[tuple[Slot, ...]]:
    """Every valid layout to which no further slot can be added.

    Any valid layout is a subset of one of these, so sums over layouts peak here.
    """
    slots = candidates(profiles)
    yield from _extend((), slots, 0)


def _extend(chosen: tuple[Slot, ...], slots: list[Slot], start: int) -> Iterator[tuple[Slot, ...]]:
    extended = False
    for position in range(start, len(slots)):
        candidate = (*chosen, slots[position])
        if is_valid(candidate):
            extended = True
            yield from _extend(candidate, slots, position + 1)
    if not extended and all(not is_valid((*chosen, slot)) for slot in slots[:start]):
        yield chosen


@functools.cache
def peak_sums(profiles: tuple[hardware.MigProfile, ...]) -> dict[str, int]:
    """The most of each resource that any valid layout uses at once."""
    peaks: dict[str, int] = collections.defaultdict(int)
    for layout in maximal_layouts(profiles):
        totals = {
            "memory": sum(profile.memory_bytes for profile, _ in layout),
            "multiprocessors": sum(profile.multiprocessors for profile, _ in layout),
        }
        for key, value in totals.items():
            peaks[key] = max(peaks[key], value)
    return dict(peaks)
