"""`mps.Daemons.reconcile`: what a starting plugin does with the MPS daemons it finds.

Covers: a daemon the checkpoint holds is adopted as it runs (same process, no command but the
question whether it runs, never ``quit``), also when its runner keeps it; one the checkpoint holds
that does not run is left for its next prepare; a running daemon nothing holds is quit and its
directory removed; a leftover directory without a daemon is removed; a daemon the runner keeps
without a directory is stopped through the runner; a runner that cannot list its daemons, or
cannot stop one, is logged and the rest is still done.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator, Mapping, Sequence

import pytest
import structlog.testing

from dra_driver.backends.fake import mpscontrol
from dra_driver.isolation import mps
from tests.dra_driver.isolation import daemonroots

FAKE = (sys.executable, "-m", "dra_driver.backends.fake.mpscontrol")


class KeepingRunner(mps.LocalRunner):
    """A local runner that also reports daemons kept elsewhere (as pods would be)."""

    def __init__(self, kept: set[str], *, listing_fails: bool = False, stop_fails: bool = False):
        self.kept_ids = kept
        self.stopped: list[str] = []
        self.listing_fails = listing_fails
        self.stop_fails = stop_fails

    def start(self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]) -> None:
        super().start(daemon_id, control, env)
        self.kept_ids.add(daemon_id)

    def stop(self, daemon_id: str) -> None:
        if self.stop_fails:
            raise mps.MpsError("the API server said no")
        self.stopped.append(daemon_id)
        self.kept_ids.discard(daemon_id)

    def kept(self) -> set[str]:
        if self.listing_fails:
            raise mps.MpsError("the API server is away")
        return set(self.kept_ids)


@pytest.fixture
def root() -> Iterator[pathlib.Path]:
    with daemonroots.short_root() as path:
        yield path


def _daemons(root: pathlib.Path, runner: mps.Runner) -> mps.Daemons:
    return mps.Daemons(root / "mps", control=FAKE, runner=runner)


def _start(daemons: mps.Daemons, daemon_id: str) -> int:
    """Start `daemon_id`; its process id."""
    daemons.ensure(mps.DaemonSpec(id=daemon_id, devices=("GPU-0",), active_thread_percentage=50))
    (pid,) = mpscontrol.running_daemons(under=daemons.root / daemon_id)
    return pid


def _commands(daemons: mps.Daemons, daemon_id: str) -> list[str]:
    """The commands the daemon got, in order (each log line: ``<time> <command>``)."""
    lines = (daemons.root / daemon_id / "log" / "control.log").read_text().splitlines()
    return [line.split(" ", 1)[1] for line in lines]


def test_a_held_daemon_is_adopted_as_it_runs(root: pathlib.Path) -> None:
    runner = KeepingRunner(set())
    before = _daemons(root, runner)
    pid = _start(before, "gpu-0")
    commands = _commands(before, "gpu-0")
    before.close()  # the old plugin ends
    after = _daemons(root, runner)
    with structlog.testing.capture_logs() as logs:
        after.reconcile({"gpu-0"})
    assert mpscontrol.running_daemons(under=root) == {pid}
    new = _commands(after, "gpu-0")[len(commands) :]
    assert new, "asked whether it runs"
    assert all(c.startswith("get_") for c in new), "only asked, never set or quit"
    assert runner.stopped == []
    assert {"event": "mps.adopted", "daemon": "gpu-0", "log_level": "info"} in logs
    after.close()


def test_a_held_daemon_that_does_not_run_is_left_for_its_next_prepare(
    root: pathlib.Path,
) -> None:
    daemons = _daemons(root, mps.LocalRunner())
    (daemons.root / "gpu-1" / "pipe").mkdir(parents=True)
    with structlog.testing.capture_logs() as logs:
        daemons.reconcile({"gpu-1"})
    assert (daemons.root / "gpu-1").is_dir()
    assert [e["event"] for e in logs] == ["mps.not_running"]


def test_daemons_nothing_holds_are_stopped_and_their_directories_removed(
    root: pathlib.Path,
) -> None:
    daemons = _daemons(root, mps.LocalRunner())
    held = _start(daemons, "gpu-0")
    _start(daemons, "claim-gone")
    (daemons.root / "left-behind" / "pipe").mkdir(parents=True)  # no daemon
    daemons.reconcile({"gpu-0"})
    assert mpscontrol.running_daemons(under=root) == {held}
    assert daemons.known() == {"gpu-0"}
    daemons.close()


def test_a_daemon_only_the_runner_keeps_is_stopped_through_it(root: pathlib.Path) -> None:
    runner = KeepingRunner({"gpu-0", "gpu-7"})
    daemons = _daemons(root, runner)
    daemons.reconcile({"gpu-0"})
    assert runner.stopped == ["gpu-7"]


@pytest.mark.parametrize(
    ("runner", "event"),
    [
        pytest.param(KeepingRunner(set(), listing_fails=True), "mps.kept_unknown", id="listing"),
        pytest.param(KeepingRunner(set(), stop_fails=True), "mps.orphan_not_stopped", id="stop"),
    ],
)
def test_a_runner_error_is_logged_and_directories_are_still_reconciled(
    root: pathlib.Path, runner: KeepingRunner, event: str
) -> None:
    daemons = _daemons(root, runner)
    (daemons.root / "left-behind" / "pipe").mkdir(parents=True)
    with structlog.testing.capture_logs() as logs:
        daemons.reconcile(set())
    assert event in [e["event"] for e in logs]
    if not runner.stop_fails:
        assert daemons.known() == set()
