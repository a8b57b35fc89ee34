"""The leader-election record, and where it lives: a ``coordination.k8s.io/v1`` Lease.

`Record` is the part of a Lease that leader election reads and writes (holder, duration, times,
transitions); `Lease` is a stored Lease: its record plus the resourceVersion it was read at and
the raw object, so that an update writes back every other field as it was. `LeaseStore` is the
seam `leaderelection` talks to; `ApiLeaseStore` implements it with plain-JSON requests, where an
update carries the resourceVersion that was read and so fails with `errors.ConflictError` (409)
when someone else wrote in between: optimistic concurrency, exactly one writer wins.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any, Protocol

from controller import errors, rest

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Record:
    holder: str
    """``holderIdentity``; empty when nobody holds the lease (released)."""
    lease_seconds: int
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0


@dataclasses.dataclass(frozen=True)
class Lease:
    record: Record
    resource_version: str
    raw: Obj = dataclasses.field(compare=False, repr=False)


class LeaseStore(Protocol):
    def get(self) -> Lease | None:
        """The lease, or None if it does not exist."""

    def create(self, record: Record) -> Lease:
        """Create the lease; `errors.ConflictError` if it exists already."""

    def update(self, lease: Lease, record: Record) -> Lease:
        """Write `record` over `lease`; `errors.ConflictError` if it changed since it was read."""


def micro_time(moment: datetime.datetime) -> str:
    """A ``metav1.MicroTime`` string: ``2025-01-02T03:04:05.123456Z``."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_object(obj: Obj) -> Lease:
    spec = obj.get("spec") or {}
    record = Record(
        holder=spec.get("holderIdentity") or "",
        lease_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime") or "",
        renew_time=spec.get("renewTime") or "",
        transitions=int(spec.get("leaseTransitions") or 0),
    )
    return Lease(record=record, resource_version=obj["metadata"]["resourceVersion"], raw=obj)


def _spec(record: Record) -> Obj:
    spec: Obj = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time:
        spec["renewTime"] = record.renew_time
    return spec


class ApiLeaseStore:
    """The Lease `name` in `namespace` on the API server."""

    def __init__(
        self, client: rest.Rest, *, namespace: str, name: str, timeout: float = 5.0
    ) -> None:
        self._client = client
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._name = name
        self._timeout = timeout

    def get(self) -> Lease | None:
        try:
            obj = self._client.request(
                "GET", f"{self._collection}/{self._name}", timeout=self._timeout
            )
        except errors.NotFoundError:
            return None
        return from_object(obj)

    def create(self, record: Record) -> Lease:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name},
            "spec": _spec(record),
        }
        obj = self._client.request("POST", self._collection, body=body, timeout=self._timeout)
        return from_object(obj)

    def update(self, lease: Lease, record: Record) -> Lease:
        body = copy.deepcopy(lease.raw)
        body["metadata"]["resourceVersion"] = lease.resource_version
        body["spec"] = {**(body.get("spec") or {}), **_spec(record)}
        obj = self._client.request(
            "PUT", f"{self._collection}/{self._name}", body=body, timeout=self._timeout
        )
        return from_object(obj)
