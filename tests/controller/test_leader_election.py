"""Leader election: the acquire/renew/release state machine, and the loop that runs it.

Covers, with a fake clock against the Lease on an in-memory API server:
- the first candidate creates the Lease; a second one stays a follower while the leader renews,
  and takes over only after the record has stood still for the lease duration on its own clock;
- renewing keeps the acquire time and the transition count, a takeover bumps the count;
- of two candidates that read the same version, one wins and the other gets a 409 and follows;
- a released Lease (empty holder) is taken at once; releasing a lease someone else holds does
  nothing;
- timing that could let two leaders overlap is refused.
With real threads and short periods: exactly one of two loops leads; a clean stop runs the
stop callback before the Lease is released and the other takes over; a leader that cannot renew
(server unreachable) steps down after the renew deadline, without ending its loop, and leads
again once the server is back.
"""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from controller import errors, leaderelection, leases
from tests.controller import fakeapi

TIMING = leaderelection.Timing(lease_duration=15, renew_deadline=10, retry_period=2)
LEASE = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/ctl"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)


@pytest.fixture
def api() -> fakeapi.FakeApi:
    return fakeapi.FakeApi()


def store(api: fakeapi.FakeApi) -> leases.ApiLeaseStore:
    return leases.ApiLeaseStore(api, namespace="ns", name="ctl")


def candidate(
    api: fakeapi.FakeApi, name: str, clock: Clock, timing: leaderelection.Timing = TIMING
) -> leaderelection.Elector:
    return leaderelection.Elector(
        store(api), identity=name, timing=timing, clock=clock, wall_clock=clock.wall
    )


def spec(api: fakeapi.FakeApi) -> dict[str, object]:
    value: dict[str, object] = api.objects[LEASE]["spec"]
    return value


def test_first_creates_second_waits_for_expiry(api: fakeapi.FakeApi) -> None:
    clock = Clock()
    a, b = candidate(api, "a", clock), candidate(api, "b", clock)
    assert a.try_acquire_or_renew()
    assert spec(api)["holderIdentity"] == "a"
    assert spec(api)["leaseDurationSeconds"] == 15
    assert spec(api)["renewTime"] == "1970-01-01T00:16:40.000000Z"
    assert not b.try_acquire_or_renew()
    assert b.holder == "a"
    assert not b.is_leader

    for _ in range(5):  # the leader renews every 2 s: the follower never gets in
        clock.now += 2
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert spec(api)["acquireTime"] == "1970-01-01T00:16:40.000000Z"  # kept across renewals
    assert spec(api)["leaseTransitions"] == 0

    clock.now += 14.9  # a went silent; b saw the last change 14.9 s ago
    assert not b.try_acquire_or_renew()
    clock.now += 0.1
    assert b.try_acquire_or_renew()
    assert spec(api)["holderIdentity"] == "b"
    assert spec(api)["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()  # a comes back and finds b leading
    assert not a.is_leader


def test_racing_candidates_one_wins_by_resource_version(api: fakeapi.FakeApi) -> None:
    clock = Clock()
    a, b = candidate(api, "a", clock), candidate(api, "b", clock)
    assert a.try_acquire_or_renew()
    assert a.release()
    fired = False

    def b_writes_between_a_read_and_a_write(method: str, path: str) -> None:
        nonlocal fired
        if method == "PUT" and not fired:
            fired = True
            assert b.try_acquire_or_renew()

    api.before.append(b_writes_between_a_read_and_a_write)
    assert not a.try_acquire_or_renew()  # 409 Conflict: b won
    assert spec(api)["holderIdentity"] == "b"
    puts = [call for call in api.calls if call[0] == "PUT"]
    assert len(puts) == 3  # a's release, b's win, a's refused write


def test_released_lease_is_taken_at_once(api: fakeapi.FakeApi) -> None:
    clock = Clock()
    a, b = candidate(api, "a", clock), candidate(api, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    assert spec(api)["holderIdentity"] == ""
    assert spec(api)["leaseDurationSeconds"] == 1
    assert not a.is_leader
    assert b.try_acquire_or_renew()  # no waiting for the lease duration
    assert spec(api)["leaseTransitions"] == 1
    assert not a.release()  # not a's to release any more
    assert spec(api)["holderIdentity"] == "b"


def test_release_refused_when_someone_wrote_meanwhile(api: fakeapi.FakeApi) -> None:
    clock = Clock()
    a = candidate(api, "a", clock)
    assert a.try_acquire_or_renew()
    api.touch(LEASE)
    assert not a.release()
    assert spec(api)["holderIdentity"] == "a"


@pytest.mark.parametrize(
    ("lease", "renew", "retry"),
    [(10, 10, 2), (15, 10, 9), (15, 20, 2), (15, 10, 0)],
    ids=["renew-not-shorter", "retry-too-long", "renew-past-lease", "no-retry"],
)
def test_unsafe_timing_is_refused(lease: float, renew: float, retry: float) -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline"):
        leaderelection.Timing(lease_duration=lease, renew_deadline=renew, retry_period=retry)


FAST = leaderelection.Timing(lease_duration=1.0, renew_deadline=0.6, retry_period=0.05)


class Candidate:
    """A `LeaderElection` loop in a thread, recording its callbacks."""

    def __init__(self, api: fakeapi.FakeApi, name: str) -> None:
        self.events: list[str] = []
        elector = leaderelection.Elector(store(api), identity=name, timing=FAST)
        self.election = leaderelection.LeaderElection(
            elector,
            timing=FAST,
            on_started_leading=lambda: self.events.append("started"),
            on_stopped_leading=lambda: self.events.append(f"stopped:{spec(api)['holderIdentity']}"),
        )
        self.thread = threading.Thread(target=self.election.run, name=f"candidate-{name}")
        self.thread.start()

    def stop(self) -> None:
        self.election.stop()
        self.thread.join()


def wait_until(condition: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_loops_one_leader_then_clean_handover(api: fakeapi.FakeApi) -> None:
    a = Candidate(api, "a")
    wait_until(lambda: a.election.leading)
    b = Candidate(api, "b")
    try:
        time.sleep(0.3)  # several renewals
        assert not b.election.leading
        a.stop()
        assert a.events == ["started", "stopped:a"]  # duties stopped while still holding it
        wait_until(lambda: b.election.leading, timeout=0.5)
        assert spec(api)["holderIdentity"] == "b"
    finally:
        a.stop()
        b.stop()
    assert spec(api)["holderIdentity"] == ""


def test_leader_that_cannot_renew_steps_down_and_comes_back(api: fakeapi.FakeApi) -> None:
    a = Candidate(api, "a")
    try:
        wait_until(lambda: a.election.leading)
        unreachable = threading.Event()

        def server_down(method: str, path: str) -> None:
            if unreachable.is_set():
                raise errors.UnavailableError(f"{method} {path}: connection refused")

        api.before.append(server_down)
        unreachable.set()
        went = time.monotonic()
        wait_until(lambda: not a.election.leading)
        # Counted from the last renewal, a retry period or less before the server went away.
        assert (
            FAST.renew_deadline - FAST.retry_period <= time.monotonic() - went < FAST.lease_duration
        )
        assert a.events == ["started", "stopped:a"]
        assert a.thread.is_alive()  # still a candidate, not crashed
        unreachable.clear()
        wait_until(lambda: a.election.leading)
        assert a.events == ["started", "stopped:a", "started"]
    finally:
        a.stop()
