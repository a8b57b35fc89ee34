"""Which pods each claim is reserved for, as the plugin last read the claim: names for metrics.

A ResourceClaim lists the pods that use it in ``status.reservedFor``; the plugin reads every claim
it prepares (each NodePrepareResources call, also for a claim already prepared when another pod
joins it) and every prepared claim once per sweep, the first sweep right at start-up
(`claimfetching.ClaimFetcher` hands each claim it reads to `Reservations.record`). So the pod
names cost no API request of their own and nothing is read at scrape time; a pod that leaves a
claim other pods keep using is still named until the next sweep.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from dra_driver import claims


class Reservations:
    """Pod names by claim UID (thread-safe: gRPC workers and the sweep record, scrapes read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[claims.ClaimUID, tuple[str, ...]] = {}

    def record(self, claim: Mapping[str, Any]) -> None:
        """Remember the pods `claim` (a ResourceClaim as JSON) is reserved for now."""
        uid = (claim.get("metadata") or {}).get("uid")
        if not uid:
            return
        pods = sorted(
            {
                consumer["name"]
                for consumer in (claim.get("status") or {}).get("reservedFor") or []
                if consumer.get("resource") == "pods"
                and not consumer.get("apiGroup")
                and consumer.get("name")
            }
        )
        with self._lock:
            self._pods[claims.ClaimUID(uid)] = tuple(pods)

    def pods(self, uid: claims.ClaimUID) -> tuple[str, ...]:
        """The pods the claim was last seen reserved for, sorted (none if never read)."""
        with self._lock:
            return self._pods.get(uid, ())

    def forget(self, uid: claims.ClaimUID) -> None:
        """Forget the claim `uid` (unprepared: nothing of it is exported any more)."""
        with self._lock:
            self._pods.pop(uid, None)

    def retain(self, uids: Collection[claims.ClaimUID]) -> None:
        """Forget every claim but `uids` (the claims prepared now)."""
        with self._lock:
            for uid in [uid for uid in self._pods if uid not in uids]:
                del self._pods[uid]
