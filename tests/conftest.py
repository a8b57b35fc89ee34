"""Test hygiene shared by every test (warnings are errors: see pyproject.toml).

- A test that leaves a thread running fails: leaked threads hide unfinished work.
- `--with-e2e` / `--without-e2e` select the end-to-end scenarios (marker ``e2e``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from dra_driver.backends.fake import mpscontrol


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--without-e2e",
        action="store_true",
        help="skip end-to-end scenarios on the local control plane (they run by default)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--without-e2e"):
        return
    skip = pytest.mark.skip(reason="--without-e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"


@pytest.fixture(autouse=True)
def _no_leaked_mps_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fake MPS daemons a test started in its temporary directories are stopped after it (they
    outlive their starter; those in directories a test removes exit by themselves). Daemons of
    other test runs on the machine are left alone."""
    base = tmp_path_factory.getbasetemp()
    before = mpscontrol.running_daemons(base)
    yield
    for pid in mpscontrol.running_daemons(base) - before:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
