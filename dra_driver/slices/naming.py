"""Names of the devices and counter sets a node publishes (DNS labels, stable across restarts).

| thing | name |
|---|---|
| full GPU | ``gpu-<index>`` |
| MIG placement (dynamic or static) | ``gpu-<index>-mig-<profile>-<start>``, e.g. ``gpu-0-mig-1g5gb-3``, ``gpu-0-mig-1g5gb-me-0`` |
| shared device (full mode) | ``gpu-<index>-shared`` |
| fixed share (compatibility mode) | ``gpu-<index>-share-<k>`` |
| counter set | ``gpu-<index>-counters`` |
"""

from __future__ import annotations


def profile_slug(profile_name: str) -> str:
    """``1g.5gb`` → ``1g5gb``; ``1g.5gb+me`` → ``1g5gb-me`` (DNS-label safe)."""
    return profile_name.replace(".", "").replace("+", "-").lower()


def gpu(index: int) -> str:
    return f"gpu-{index}"


def mig(index: int, profile_name: str, start: int) -> str:
    return f"gpu-{index}-mig-{profile_slug(profile_name)}-{start}"


def shared(index: int) -> str:
    return f"gpu-{index}-shared"


def share(index: int, k: int) -> str:
    return f"gpu-{index}-share-{k}"


def counter_set(index: int) -> str:
    return f"gpu-{index}-counters"


def memory_slice_counter(k: int) -> str:
    return f"memory-slice-{k}"


def instances_counter(profile_name: str) -> str:
    """Counter that caps how many instances of a profile may exist (e.g. one ``+me``)."""
    return f"mig-{profile_slug(profile_name)}-instances"
