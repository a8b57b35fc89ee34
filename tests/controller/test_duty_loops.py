"""The leader duties' loop.

Covers: a `looping.Loop` runs a pass at once, another when woken, and none until its interval
otherwise; a retryable API error is retried after a short backoff; an error the server gives for
good is logged at error level and waits for the interval, and so does any other exception (a
bug), which does not end the loop; `stop` ends it. Nothing is timed: a test waits for the loop's
``loop.waiting`` event (after it, nothing runs until a wake) and checks the delay in it. (The
controller process's flags: `test_controller_settings`; its exit codes: `test_controller_process`.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from controller import errors, looping


@pytest.fixture
def running() -> Iterator[Callable[[looping.Loop], None]]:
    threads: list[tuple[looping.Loop, threading.Thread]] = []

    def start(loop: looping.Loop) -> None:
        thread = threading.Thread(target=loop.run)
        thread.start()
        threads.append((loop, thread))

    yield start
    for loop, thread in threads:
        loop.stop()
        thread.join(10)  # a guard against a hang, not a measure: it returns at once
        assert not thread.is_alive()


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition`; the timeout only guards against a hang (it holds no expectation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def waits(logs: list[MutableMapping[str, Any]]) -> list[float]:
    """The delays of the ``loop.waiting`` events so far: the loop is idle after each of them."""
    return [entry["delay"] for entry in logs if entry["event"] == "loop.waiting"]


def test_runs_at_once_then_when_woken(running: Callable[[looping.Loop], None]) -> None:
    calls: list[int] = []
    loop = looping.Loop("test", lambda: calls.append(1), interval=60)
    with capture_logs() as logs:
        running(loop)
        eventually(lambda: len(waits(logs)) == 1)
        assert len(calls) == 1  # the first pass ran, and the loop now waits for the interval
        assert waits(logs) == [60]
        loop.wake()
        eventually(lambda: len(waits(logs)) == 2)
    assert len(calls) == 2
    assert loop.passes == 2
    assert waits(logs) == [60, 60]


def test_retryable_errors_back_off_and_retry(running: Callable[[looping.Loop], None]) -> None:
    outcomes: list[Exception | None] = [errors.UnavailableError("busy"), errors.ConflictError("x")]

    def work() -> None:
        if outcomes and (outcome := outcomes.pop(0)) is not None:
            raise outcome

    loop = looping.Loop("test", work, interval=60, first_backoff=0.01)
    with capture_logs() as logs:
        running(loop)
        eventually(lambda: 60 in waits(logs))
    assert loop.passes == 1
    assert [(entry["event"], entry["delay"]) for entry in logs] == [
        ("loop.retrying", 0.01),
        ("loop.waiting", 0.01),
        ("loop.retrying", 0.02),
        ("loop.waiting", 0.02),
        ("loop.waiting", 60),
    ]


def test_refused_errors_wait_for_the_interval(running: Callable[[looping.Loop], None]) -> None:
    attempts: list[int] = []

    def work() -> None:
        attempts.append(1)
        raise errors.RejectedError("deviceclasses is forbidden", status=403)

    loop = looping.Loop("test", work, interval=60, first_backoff=0.01)
    with capture_logs() as logs:
        running(loop)
        eventually(lambda: len(waits(logs)) == 1)
    assert len(attempts) == 1
    assert [entry["event"] for entry in logs] == ["loop.refused", "loop.waiting"]
    assert logs[0]["log_level"] == "error"
    assert waits(logs) == [60]  # the interval, not the backoff


def test_a_bug_in_a_pass_does_not_end_the_loop(running: Callable[[looping.Loop], None]) -> None:
    attempts: list[int] = []

    def work() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyError("spec")

    loop = looping.Loop("test", work, interval=60)
    with capture_logs() as logs:
        running(loop)
        eventually(lambda: len(waits(logs)) == 1)
        assert len(attempts) == 1
        assert waits(logs) == [60]  # waits for the interval, like a refused pass
        loop.wake()
        eventually(lambda: len(waits(logs)) == 2)
    assert loop.passes == 1
    assert [entry["event"] for entry in logs] == ["loop.failed", "loop.waiting", "loop.waiting"]
    assert logs[0]["exc_info"] is True
