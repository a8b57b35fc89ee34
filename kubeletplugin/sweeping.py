"""The periodic sweep: unprepare claims that are gone from the API server.

The kubelet unprepares a claim when its pods are done; if that call never comes (the kubelet lost
its state, the node was drained by force), a prepared claim whose ResourceClaim no longer exists,
or exists with a new UID, would hold its devices (and MIG instances) forever. The sweep finds and
releases them. A claim whose state cannot be read right now (API server down) is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from dra_driver import claims, preparing
from dra_driver.checkpoint import model

log = structlog.get_logger(__name__)


def sweep(
    preparer: preparing.Preparer, *, exists: Callable[[claims.ClaimRef], bool | None]
) -> list[claims.ClaimRef]:
    """Unprepare every completed claim that `exists` says is gone; return those."""
    gone = []
    for prepared in preparer.prepared():
        if prepared.state is not model.PrepareState.COMPLETED:
            continue
        ref = claims.ClaimRef(prepared.namespace, prepared.name, prepared.uid)
        if exists(ref) is False:
            gone.append(ref)
    if gone:
        log.info("sweep.unpreparing", claims=[str(ref) for ref in gone])
        preparer.unprepare(gone)
    return gone
