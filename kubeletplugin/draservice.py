"""The DRA gRPC service (v1 and v1beta1, one implementation): protobuf in, domain calls, protobuf out.

NodePrepareResources: GET every claim, turn it into our part of its allocation, prepare the batch
(`dra_driver.preparing`), refuse claims that would put two MPS daemons in one container
(`podclaims`; a claim prepared by this call is undone again), answer one entry per claim. A claim
that fails gets its ``error`` set; the call itself fails only if the request is malformed.
v1beta1 is the same service without the ``share_id`` field, so the answer is built from the
version's own message classes.

The claim GETs end in time for the kubelet's deadline (within `READING_SHARE` of the call's), and
once the API server proved unreachable for one claim, the other claims of the call get the same
error without another request: a hung server costs one timeout per call, not one per claim.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any, Protocol

import grpc
import structlog

from dra_driver import claims, preparing
from kubeletplugin import claimfetching, metrics, podclaims
from kubeletplugin.protos.dra.v1 import api_pb2 as v1
from kubeletplugin.protos.dra.v1 import api_pb2_grpc as v1_grpc
from kubeletplugin.protos.dra.v1beta1 import api_pb2 as v1beta1
from kubeletplugin.protos.dra.v1beta1 import api_pb2_grpc as v1beta1_grpc

log = structlog.get_logger(__name__)

READING_SHARE = 2 / 3
"""The part of the call's time (the kubelet gives it 45 s) that reading the claims may take;
the rest is kept for preparing them."""


class Fetch(Protocol):
    """`claimfetching.ClaimFetcher.fetch`: the claim's JSON, or `claims.ClaimError`."""

    def __call__(self, ref: claims.ClaimRef, *, timeout: float | None = None) -> dict[str, Any]: ...


class DraService:
    """One servicer object per API version, sharing the preparer."""

    def __init__(
        self,
        *,
        preparer: preparing.Preparer,
        fetch: Fetch,
        driver: str,
        stats: metrics.Metrics,
        get_pod: podclaims.GetPod | None = None,
        on_unprepared: Callable[[claims.ClaimUID], None] | None = None,
        messages: types.ModuleType = v1,
    ) -> None:
        self._preparer = preparer
        self._on_unprepared = on_unprepared
        """Told of each claim unprepared (what is kept about a claim for metrics goes with it)."""
        self._fetch = fetch
        self._get_pod = get_pod
        self._driver = driver
        self._stats = stats
        self._pb = messages

    def NodePrepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        with self._stats.call("prepare"):
            refs = [_ref(claim, context) for claim in request.claims]
            batch, objects, rejected = self._read(refs, context.time_remaining())
            answers: dict[str, Any] = {
                uid: self._pb.NodePrepareResourceResponse(error=error)
                for uid, error in rejected.items()
            }
            outcomes = self._preparer.prepare(batch)
            for refused, message in self._refused(batch, objects, outcomes).items():
                outcomes[refused] = preparing.Outcome(error=message)
            for uid, outcome in outcomes.items():
                answers[uid] = self._answer(outcome)
            self._count_errors("prepare", answers.values())
            return self._pb.NodePrepareResourcesResponse(claims=answers)

    def NodeUnprepareResources(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        with self._stats.call("unprepare"):
            refs = [_ref(claim, context) for claim in request.claims]
            errors = self._preparer.unprepare(refs)
            if self._on_unprepared is not None:
                for ref in refs:
                    if not errors[ref.uid]:
                        self._on_unprepared(ref.uid)
            answers = {
                uid: self._pb.NodeUnprepareResourceResponse(error=error)
                for uid, error in errors.items()
            }
            self._count_errors("unprepare", answers.values())
            return self._pb.NodeUnprepareResourcesResponse(claims=answers)

    def _read(
        self, refs: list[claims.ClaimRef], remaining: float | None
    ) -> tuple[list[claims.AllocatedClaim], dict[claims.ClaimUID, dict[str, Any]], dict[str, str]]:
        """The claims to prepare with their JSON, and why the others cannot be prepared, read
        within a share of the `remaining` seconds (None: each fetch's own timeout only)."""
        deadline = None if remaining is None else time.monotonic() + remaining * READING_SHARE
        batch: list[claims.AllocatedClaim] = []
        objects: dict[claims.ClaimUID, dict[str, Any]] = {}
        rejected: dict[str, str] = {}
        skip: str | None = None
        """Why the claims left are not read (a server that failed one would fail them all)."""
        for ref in refs:
            left = None if deadline is None else deadline - time.monotonic()
            if skip is None and left is not None and left <= 0:
                skip = "the API server is unreachable: no time left of the kubelet's deadline"
            try:
                if skip is not None:
                    raise claims.ClaimError(f"{skip} (this claim was not read)")
                obj = self._fetch(ref, timeout=left)
                batch.append(claims.allocated(obj, ref=ref, driver=self._driver))
                objects[ref.uid] = obj
            except claimfetching.UnreachableError as exc:
                self._stats.api_errors.labels("prepare").inc()
                rejected[ref.uid] = skip = str(exc)
            except claims.ClaimError as exc:
                rejected[ref.uid] = str(exc)
            if ref.uid in rejected:
                log.warning("claim.rejected", claim=str(ref), error=rejected[ref.uid])
        return batch, objects, rejected

    def _refused(
        self,
        batch: list[claims.AllocatedClaim],
        objects: dict[claims.ClaimUID, dict[str, Any]],
        outcomes: dict[str, preparing.Outcome],
    ) -> dict[claims.ClaimUID, str]:
        """Claims refused after all (MPS daemons mixed in a container); those this call prepared
        are unprepared again."""
        if self._get_pod is None:
            return {}
        prepared = {
            ref.uid: outcomes[ref.uid].devices
            for ref in (claim.ref for claim in batch)
            if not outcomes[ref.uid].error
        }
        try:
            refused = podclaims.mixed_daemons(objects, prepared, get_pod=self._get_pod)
        except claims.ClaimError as exc:  # the pods could not be read: retry the whole batch
            refused = {uid: str(exc) for uid in prepared}
        if not refused:  # the usual case: no lock to take
            return {}
        undo = [c.ref for c in batch if c.ref.uid in refused and outcomes[c.ref.uid].new]
        for uid, error in self._preparer.unprepare(undo).items():
            if error:
                log.error("claim.refused_undo_failed", claim=uid, error=error)
        for uid, message in refused.items():
            log.warning("claim.refused", claim=uid, error=message)
        return refused

    def _answer(self, outcome: preparing.Outcome) -> Any:
        if outcome.error:
            return self._pb.NodePrepareResourceResponse(error=outcome.error)
        devices = []
        for device in outcome.devices:
            fields: dict[str, Any] = {
                "request_names": list(device.request_names),
                "pool_name": device.pool,
                "device_name": device.device,
                "cdi_device_ids": list(device.cdi_ids),
            }
            if device.share_id and self._pb is v1:  # v1beta1 has no share_id
                fields["share_id"] = device.share_id
            devices.append(self._pb.Device(**fields))
        return self._pb.NodePrepareResourceResponse(devices=devices)

    def _count_errors(self, operation: str, answers: Any) -> None:
        failed = sum(1 for answer in answers if answer.error)
        if failed:
            self._stats.claim_errors.labels(operation).inc(failed)


def _ref(claim: Any, context: grpc.ServicerContext) -> claims.ClaimRef:
    if not (claim.uid and claim.namespace and claim.name):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"claim without uid/namespace/name: {claim}"
        )
    return claims.ClaimRef(claim.namespace, claim.name, claims.ClaimUID(claim.uid))


def register(
    server: grpc.Server, *, preparer: preparing.Preparer, stats: metrics.Metrics, **kwargs: Any
) -> None:
    """Serve the DRA service in both versions on `server` (`kwargs`: the rest of `DraService`'s);
    the prepared devices are counted at scrape time."""
    stats.count_prepared_devices(preparer.device_counts)
    kwargs |= {"preparer": preparer, "stats": stats}
    v1_grpc.add_DRAPluginServicer_to_server(DraService(messages=v1, **kwargs), server)
    v1beta1_grpc.add_DRAPluginServicer_to_server(DraService(messages=v1beta1, **kwargs), server)
