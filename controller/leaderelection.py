"""Leader election through a Lease, so that replicas of the cluster controller never both lead.

Only the leader runs the cluster-wide duties (slice garbage collection, DeviceClass apply); the
webhook runs on every replica. The rules are client-go's:

- A candidate tries every `Timing.retry_period` (with a little jitter). A lease that does not
  exist is created; one that is held by nobody (released) is taken at once; one held by someone
  else is taken only after its record has stayed the same for its ``leaseDurationSeconds`` on the
  candidate's own clock (so clock skew between machines does not matter).
- Every write is an update carrying the resourceVersion that was read: of two candidates racing,
  one gets 409 Conflict and stays a follower.
- The leader renews every retry period. It steps down when it sees another holder, or when it has
  not renewed for `Timing.renew_deadline` (shorter than the lease, so it stops its duties before
  anyone else may start theirs). Stepping down stops the duties and goes back to being a candidate;
  the process carries on.
- On a clean stop the leader stops its duties first, then releases the lease (empty holder, one
  second duration), so a successor takes over at its next try instead of a lease duration later.

`Elector` is one attempt at a time against a `leases.LeaseStore` (a fake one in unit tests);
`LeaderElection` runs it in a loop and calls back when leading starts and stops.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
import secrets
import threading
import time
from collections.abc import Callable

import structlog

from controller import errors, leases

log = structlog.get_logger(__name__)

JITTER = 1.2


@dataclasses.dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    """Seconds a lease stays valid after its last renewal: how long followers wait for a silent leader."""
    renew_deadline: float = 10.0
    """Seconds the leader may go without renewing before it steps down."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period * JITTER > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > 1.2 × retry period > 0, "
                f"got {self.lease_duration} / {self.renew_deadline} / {self.retry_period}"
            )


def identity(base: str) -> str:
    """`base` (pod name or hostname) with a random suffix: a restarted pod is a new candidate."""
    return f"{base}_{secrets.token_hex(4)}"


class Elector:
    """One candidate's view of the lease; each `try_acquire_or_renew` is one attempt."""

    def __init__(
        self,
        store: leases.LeaseStore,
        *,
        identity: str,
        timing: Timing,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.identity = identity
        self._store = store
        self._timing = timing
        self._clock = clock
        self._wall_clock = wall_clock
        self._observed: leases.Lease | None = None
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        """Whether the lease, as last seen, names this candidate."""
        return self._observed is not None and self._observed.record.holder == self.identity

    @property
    def holder(self) -> str:
        """The holder as last seen ("" for none)."""
        return self._observed.record.holder if self._observed else ""

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True if this candidate holds the lease now. Raises `errors.ApiError`."""
        now = leases.micro_time(self._wall_clock())
        lease = self._store.get()
        if lease is None:
            return self._write(None, self._record(now, acquire_time=now, transitions=0))
        if self._observed is None or lease.record != self._observed.record:
            self._observe(lease)
        else:
            self._observed = lease  # same record, maybe a newer resourceVersion
        held = lease.record
        if held.holder and held.holder != self.identity and not self._expired(held):
            return False
        mine = held.holder == self.identity
        record = self._record(
            now,
            acquire_time=held.acquire_time if mine and held.acquire_time else now,
            transitions=held.transitions if mine else held.transitions + 1,
        )
        return self._write(lease, record)

    def release(self) -> bool:
        """Give the lease up if this candidate holds it; True if it was released here."""
        if self._observed is None or not self.is_leader:
            return False
        now = leases.micro_time(self._wall_clock())
        record = leases.Record(
            holder="",
            lease_seconds=1,
            acquire_time=now,
            renew_time=now,
            transitions=self._observed.record.transitions,
        )
        try:
            self._observe(self._store.update(self._observed, record))
        except errors.ConflictError:
            return False  # someone else wrote it meanwhile: it is not ours to release
        return True

    def _record(self, now: str, *, acquire_time: str, transitions: int) -> leases.Record:
        return leases.Record(
            holder=self.identity,
            lease_seconds=math.ceil(self._timing.lease_duration),
            acquire_time=acquire_time,
            renew_time=now,
            transitions=transitions,
        )

    def _expired(self, record: leases.Record) -> bool:
        return self._clock() >= self._observed_at + record.lease_seconds

    def _write(self, lease: leases.Lease | None, record: leases.Record) -> bool:
        try:
            stored = (
                self._store.create(record) if lease is None else self._store.update(lease, record)
            )
        except errors.ConflictError:
            return False  # another candidate wrote first
        self._observe(stored)
        return True

    def _observe(self, lease: leases.Lease) -> None:
        if lease.record.holder != self.holder:
            log.info("leader.observed", holder=lease.record.holder or None, me=self.identity)
        self._observed = lease
        self._observed_at = self._clock()


class LeaderElection:
    """Runs an `Elector` until `stop`, calling back when this candidate starts and stops leading.

    `on_stopped_leading` runs before the lease is released, and must return only once the
    duties have stopped.
    """

    def __init__(
        self,
        elector: Elector,
        *,
        timing: Timing,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.elector = elector
        self._timing = timing
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock = clock
        self._stopped = threading.Event()
        self._leading = threading.Event()

    @property
    def leading(self) -> bool:
        """Whether the leader duties are (being) run by this candidate."""
        return self._leading.is_set()

    def run(self) -> None:
        try:
            while self._acquire():
                self._lead()
        finally:
            self._release()

    def stop(self) -> None:
        self._stopped.set()

    def _attempt(self) -> bool:
        try:
            return self.elector.try_acquire_or_renew()
        except errors.ApiError as exc:
            log.warning("leader.attempt_failed", error=str(exc), me=self.elector.identity)
            return False

    def _acquire(self) -> bool:
        """Try until this candidate leads (True) or is stopped (False)."""
        while not self._stopped.is_set():
            if self._attempt():
                return True
            self._stopped.wait(self._timing.retry_period * random.uniform(1.0, JITTER))
        return False

    def _lead(self) -> None:
        log.info("leader.started", me=self.elector.identity)
        self._leading.set()
        reason = "stopping"
        try:
            self._on_started()
            renewed = self._clock()
            while not self._stopped.wait(self._timing.retry_period):
                if self._attempt():
                    renewed = self._clock()
                elif not self.elector.is_leader:
                    reason = "lost"
                    break
                elif self._clock() - renewed >= self._timing.renew_deadline:
                    reason = "renew_deadline"
                    break
        finally:
            self._on_stopped()
            self._leading.clear()
            log.info("leader.stopped", me=self.elector.identity, reason=reason)

    def _release(self) -> None:
        try:
            if self.elector.release():
                log.info("leader.released", me=self.elector.identity)
        except errors.ApiError as exc:
            log.warning("leader.release_failed", error=str(exc), me=self.elector.identity)
