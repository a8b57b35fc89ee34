"""The periodic sweep: unprepare claims that are gone from the API server.

The kubelet unprepares a claim when its pods are done; if that call never comes (the kubelet lost
its state, the node was drained by force), a prepared claim whose ResourceClaim no longer exists,
or exists with a new UID, would hold its devices (and MIG instances) forever. The sweep finds and
releases them. A claim whose state cannot be read right now (API server down) is left alone, and
so are the claims after it: the server that could not answer for one would keep each of them
waiting for its timeout. `pass_` runs a sweep as a duty of the plugin's main loop
(`controller.looping.Loop`): a sweep that could not ask about every claim, or could not release
one, raises a retryable error, so the loop logs it and sweeps again after a backoff.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from controller import errors
from dra_driver import claims, preparing
from dra_driver.checkpoint import model

log = structlog.get_logger(__name__)

Exists = Callable[[claims.ClaimRef], bool | None]
"""True: the claim is there with the same UID; False: gone or replaced; None: cannot tell now."""


@dataclasses.dataclass(frozen=True)
class Swept:
    gone: list[claims.ClaimRef] = dataclasses.field(default_factory=list)
    """Claims found gone, unprepared (or tried: see `failed`)."""
    unsure: list[claims.ClaimRef] = dataclasses.field(default_factory=list)
    """Claims whose existence could not be told: left alone until the next sweep."""
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    """Gone claims whose unprepare failed, by UID, with why."""


def sweep(preparer: preparing.Preparer, *, exists: Exists) -> Swept:
    """Unprepare every completed claim that `exists` says is gone."""
    gone: list[claims.ClaimRef] = []
    unsure: list[claims.ClaimRef] = []
    for prepared in preparer.prepared():
        if prepared.state is not model.PrepareState.COMPLETED:
            continue
        ref = claims.ClaimRef(prepared.namespace, prepared.name, prepared.uid)
        answer = None if unsure else exists(ref)
        if answer is None:
            unsure.append(ref)
        elif answer is False:
            gone.append(ref)
    failed: dict[str, str] = {}
    if gone:
        log.info("sweep.unpreparing", claims=[str(ref) for ref in gone])
        failed = {uid: error for uid, error in preparer.unprepare(gone).items() if error}
    if unsure:
        log.warning("sweep.unsure", claims=[str(ref) for ref in unsure])
    return Swept(gone=gone, unsure=unsure, failed=failed)


def pass_(preparer: preparing.Preparer, *, exists: Exists) -> None:
    """One sweep; a `errors.RetryableError` if it left a claim to look at again soon."""
    swept = sweep(preparer, exists=exists)
    if swept.unsure:
        raise errors.UnavailableError(
            f"the sweep could not tell whether {len(swept.unsure)} claim(s) still exist"
        )
    if swept.failed:
        raise errors.RetryableError(
            f"the sweep could not unprepare {len(swept.failed)} gone claim(s): "
            + "; ".join(swept.failed.values())
        )
