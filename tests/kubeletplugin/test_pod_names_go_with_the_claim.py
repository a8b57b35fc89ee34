"""The pod names kept for the device info metric go when their claim is unprepared.

Covers: a claim unprepared through the gRPC service is forgotten at once (without waiting for a
scrape, so a node without a metrics port keeps no name of a claim long gone); a claim whose
unprepare failed keeps its names (it is still prepared).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dra_driver import claims
from kubeletplugin import draservice, metrics, reservations
from kubeletplugin.protos.dra.v1 import api_pb2 as v1


class _Preparer:
    """Unprepares every claim but the ones named in `failing`."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing

    def unprepare(self, refs: Sequence[claims.ClaimRef]) -> dict[str, str]:
        return {ref.uid: "stuck" if ref.uid in self.failing else "" for ref in refs}

    def device_counts(self) -> dict[str, int]:
        return {}


def _never_read(ref: claims.ClaimRef, *, timeout: float | None = None) -> dict[str, Any]:
    raise AssertionError("unprepare reads no claim")


def _reserved(uid: str, pod: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid},
        "status": {"reservedFor": [{"resource": "pods", "name": pod, "uid": f"uid-{pod}"}]},
    }


def test_an_unprepared_claim_is_forgotten_and_a_stuck_one_kept() -> None:
    pods = reservations.Reservations()
    pods.record(_reserved("u1", "pod-a"))
    pods.record(_reserved("u2", "pod-b"))
    service = draservice.DraService(
        preparer=_Preparer(failing={"u2"}),  # type: ignore[arg-type]
        fetch=_never_read,
        driver="gpu.dra.dev",
        stats=metrics.Metrics(),
        on_unprepared=pods.forget,
    )
    request = v1.NodeUnprepareResourcesRequest(
        claims=[v1.Claim(namespace="ns", name=f"claim-{uid}", uid=uid) for uid in ("u1", "u2")]
    )
    answer = service.NodeUnprepareResources(request, context=None)  # type: ignore[arg-type]
    assert answer.claims["u1"].error == ""
    assert answer.claims["u2"].error == "stuck"
    assert pods.pods(claims.ClaimUID("u1")) == ()
    assert pods.pods(claims.ClaimUID("u2")) == ("pod-b",)
