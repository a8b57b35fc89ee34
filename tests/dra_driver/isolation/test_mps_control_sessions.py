"""`mps.Daemons` asks whether a daemon runs through a control client kept open per daemon.

Covers: asking again and again starts one control client, not one per question; a daemon that
died is seen as not running (the session ends, the one-off client says so); a stopped daemon's
session ends with it; a control program that answers only when its input ends (output buffered)
still gets the right answers, through one-off clients, and is not given sessions again.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys
from collections.abc import Iterator

import pytest
import structlog

from dra_driver.backends.fake import mpscontrol
from dra_driver.isolation import mps
from tests.dra_driver.isolation import daemonroots

FAKE = (sys.executable, "-m", "dra_driver.backends.fake.mpscontrol")


@pytest.fixture
def root() -> Iterator[pathlib.Path]:
    with daemonroots.short_root() as path:
        yield path


def _counting(root: pathlib.Path, control: tuple[str, ...] = FAKE) -> tuple[str, ...]:
    """`control`, noting each client start (not daemon starts) in ``<root>/clients``."""
    script = root / "control.sh"
    script.write_text(
        '#!/bin/sh\ncase "$1" in -d|-f) ;; *) echo x >> "$(dirname "$0")/clients" ;; esac\n'
        'exec "$@"\n'
    )
    script.chmod(0o755)
    return (str(script), *control)


def _clients(root: pathlib.Path) -> int:
    path = root / "clients"
    return len(path.read_text().split()) if path.exists() else 0


def test_one_client_answers_every_question(root: pathlib.Path) -> None:
    daemons = mps.Daemons(root / "mps", control=_counting(root), runner=mps.LocalRunner())
    daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-0",)))
    before = _clients(root)
    for _ in range(5):
        assert daemons.running("gpu-0")
        daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-0",)))  # adopted
    assert _clients(root) == before
    daemons.stop("gpu-0")
    assert not daemons.running("gpu-0")
    daemons.close()


def test_a_daemon_that_died_is_not_running(root: pathlib.Path) -> None:
    daemons = mps.Daemons(root / "mps", control=FAKE, runner=mps.LocalRunner())
    daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-0",)))
    assert daemons.running("gpu-0")
    for pid in mpscontrol.running_daemons(under=root):
        os.kill(pid, signal.SIGKILL)
    assert not daemons.running("gpu-0")
    daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-0",)))  # started again
    assert daemons.running("gpu-0")
    daemons.stop("gpu-0")
    daemons.close()


def test_a_control_program_that_buffers_its_answers_gets_no_sessions(
    root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffering = root / "buffering.py"
    buffering.write_text(
        "import subprocess, sys\n"
        "if sys.argv[1:] == ['-d']:\n"
        f"    sys.exit(subprocess.call({list(FAKE)!r} + ['-d']))\n"
        f"done = subprocess.run({list(FAKE)!r}, input=sys.stdin.read(), text=True,"
        " capture_output=True)\n"
        "sys.stdout.write(done.stdout)\n"
        "sys.exit(done.returncode)\n"
    )
    monkeypatch.setattr(mps._Session, "TIMEOUT", 0.5)
    control = _counting(root, (sys.executable, str(buffering)))
    daemons = mps.Daemons(root / "mps", control=control, runner=mps.LocalRunner())
    with structlog.testing.capture_logs() as logs:
        daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-0",)))
    assert "mps.sessions_unsupported" in [entry["event"] for entry in logs]
    before = _clients(root)
    assert daemons.running("gpu-0")
    assert daemons.running("gpu-0")
    assert _clients(root) == before + 2  # one-off clients
    daemons.stop("gpu-0")
    daemons.close()
