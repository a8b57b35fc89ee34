"""How a signal stops either process (`processes.stop_on_signals`).

Covers: SIGTERM and SIGINT each set the stop event and log the given event with the signal's
name, and nothing else happens (the process goes on to wind down by itself); the exit codes both
processes document.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from dra_driver import processes


@pytest.fixture
def restored_handlers() -> Iterator[None]:
    before = {signum: signal.getsignal(signum) for signum in processes.SIGNALS}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", processes.SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.usefixtures("restored_handlers")
def test_a_signal_sets_stop_and_is_logged(signum: signal.Signals) -> None:
    stop = threading.Event()
    processes.stop_on_signals(stop, event="test.signal")
    with capture_logs() as logs:
        os.kill(os.getpid(), signum)  # handled in this (the main) thread before kill returns
        assert stop.wait(10)
    assert logs == [{"event": "test.signal", "signal": signum.name, "log_level": "info"}]


def test_exit_codes() -> None:
    assert (processes.STOPPED, processes.CANNOT_START) == (0, 2)
