"""Which MPS control daemons the CUDA processes of a container would have to join: at most one.

A CUDA process connects to the MPS daemon named by its ``CUDA_MPS_PIPE_DIRECTORY``, and to one
only. A device served by a daemon (a share on a GPU whose strategy is MPS, or a device of a claim
with an MPS config) sets that variable in its container; two such devices served by *different*
daemons in one container would have one overwrite the other, and the processes would silently run
outside one daemon's limits. The prepare flow refuses that combination with `conflicts`, which
needs to know which claims (and which of their requests) each container uses: the pod's spec,
read by the caller. Pure computation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from dra_driver import claims
from dra_driver.checkpoint import model


@dataclasses.dataclass(frozen=True)
class ContainerClaims:
    """The claims a container uses, as the kubelet hands them to it."""

    name: str
    """For messages: ``container main of pod ns/name``."""
    uses: tuple[tuple[claims.ClaimUID, str | None], ...]
    """(claim UID, request name); a request of None means all of the claim's devices."""


def daemons(devices: Sequence[model.PreparedDevice]) -> set[str]:
    return {d.isolation.mps.daemon for d in devices if d.isolation.mps is not None}


def conflicts(
    containers: Sequence[ContainerClaims],
    prepared: Mapping[claims.ClaimUID, Sequence[model.PreparedDevice]],
    names: Mapping[claims.ClaimUID, str],
) -> dict[claims.ClaimUID, str]:
    """The claims to refuse, each with why: those whose devices meet devices served by another
    MPS daemon in a container. `names` gives each claim's ``namespace/name`` for the message."""
    refused: dict[claims.ClaimUID, str] = {}
    for container in containers:
        served: dict[str, set[claims.ClaimUID]] = {}
        for uid, request in container.uses:
            devices = [
                device
                for device in prepared.get(uid, ())
                if request is None or request in device.request_names
            ]
            for daemon in daemons(devices):
                served.setdefault(daemon, set()).add(uid)
        if len(served) < 2:
            continue
        involved = sorted(set().union(*served.values()))
        listing = ", ".join(
            f"{daemon} ({', '.join(sorted(names.get(uid, uid) for uid in uids))})"
            for daemon, uids in sorted(served.items())
        )
        message = (
            f"the {container.name} would get devices of different MPS control daemons: "
            f"{listing}; a CUDA process can connect to one MPS daemon only, so one container "
            "cannot use them together: use the claims in different containers, or put the shares "
            "on one GPU"
        )
        for uid in involved:
            refused.setdefault(uid, message)
    return refused
