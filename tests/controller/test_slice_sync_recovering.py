"""`SliceSync.run` never gives up on a pool: whatever a publish runs into, it logs, counts and tries
again after a backoff, until told to stop.

Covers, in one run: a bug in computing the desired pool (an exception that is no API error) is
logged with its traceback (``slices.sync_crashed``); a request the server refuses (403) is logged
as ``slices.sync_failed``; each is reported to `on_error`; then the pool is published; the run
ends when `stop` is set, and only then.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from structlog.testing import capture_logs

from controller import errors, slicediff, slicesync
from dra_driver.slices import building, splitting
from dra_driver.slices import settings as publish
from tests.controller import fakeapi
from tests.dra_driver.slices import nodes

TARGET = slicediff.Target(driver="gpu.dra.dev", node_name="n1", pool="n1")
POOL = "/apis/resource.k8s.io/v1/resourceslices"


class _Api(fakeapi.FakeApi):
    """The fake API server with a watch that stays quiet until the test stops the run."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self._stop = stop

    def watch(self, path: str, *, timeout_seconds: int, **query: str) -> Iterator[fakeapi.Obj]:
        self._stop.wait(timeout_seconds)
        yield from ()


def test_a_bug_and_a_refusal_are_retried_until_the_pool_is_published() -> None:
    stop = threading.Event()
    api = _Api(stop)
    refusals = iter([errors.RejectedError("GET: HTTP 403: forbidden", status=403)])

    def refuse_once(method: str, path: str) -> None:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal

    api.before.append(refuse_once)
    pool = splitting.split(building.build(nodes.node("1xA100-40GB"), publish.PublishSettings()))
    bugs = iter([RuntimeError("a bug")])

    def desired() -> list[splitting.SliceContent]:
        bug = next(bugs, None)
        if bug is not None:
            raise bug
        return pool

    reported: list[None] = []
    published = threading.Event()
    api.before.append(lambda method, path: published.set() if method == "POST" else None)
    sync = slicesync.SliceSync(api, TARGET, backoff=0.01, on_error=lambda: reported.append(None))
    with capture_logs() as logs:
        thread = threading.Thread(target=sync.run, args=(desired, stop), kwargs={"resync": 60})
        thread.start()
        try:
            assert published.wait(10)
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join(10)
    assert not thread.is_alive()
    assert len(reported) == 2
    events = [entry["event"] for entry in logs if entry["event"].startswith("slices.sync")]
    assert events == ["slices.sync_crashed", "slices.sync_failed"]
    assert any(path.startswith(POOL) for method, path in api.calls if method == "POST")
