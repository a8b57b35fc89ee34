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

import dataclasses
import re


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


@dataclasses.dataclass(frozen=True)
class ParsedName:
    """What a device name says: the GPU index and, for parts of a GPU, which part."""

    gpu_index: int
    kind: str
    """``gpu``, ``shared``, ``share`` or ``mig``."""
    profile_slug: str | None = None
    start: int | None = None
    share: int | None = None


_PARSE = re.compile(
    r"^gpu-(?P<gpu>0|[1-9][0-9]*)"
    r"(?:(?P<shared>-shared)|-share-(?P<share>0|[1-9][0-9]*)"
    r"|-mig-(?P<slug>[a-z0-9-]+?)-(?P<start>[0-9]))?$"
)


def parse(name: str) -> ParsedName | None:
    """The inverse of the functions above; None for a name this driver never publishes."""
    match = _PARSE.match(name)
    if match is None:
        return None
    index = int(match["gpu"])
    if match["shared"]:
        return ParsedName(index, "shared")
    if match["share"] is not None:
        return ParsedName(index, "share", share=int(match["share"]))
    if match["slug"] is not None:
        return ParsedName(index, "mig", profile_slug=match["slug"], start=int(match["start"]))
    return ParsedName(index, "gpu")
