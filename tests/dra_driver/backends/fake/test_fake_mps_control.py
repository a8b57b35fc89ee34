"""The fake ``nvidia-cuda-mps-control``: a daemon that answers, records, quits, and never lingers.

Covers: ``-d`` returns once the daemon answers; commands set and read back settings and are
recorded; ``quit`` ends it; a daemon whose directory is removed exits by itself; an injected
start failure exits non-zero with a message.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

from dra_driver.backends.fake import mpscontrol

CONTROL = [sys.executable, "-m", "dra_driver.backends.fake.mpscontrol"]


def _env(base: pathlib.Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CUDA_MPS_PIPE_DIRECTORY": str(base / "pipe"),
        "CUDA_MPS_LOG_DIRECTORY": str(base / "log"),
        **extra,
    }


def _ask(base: pathlib.Path, *commands: str) -> str:
    done = subprocess.run(
        CONTROL,
        input="\n".join(commands) + "\n",
        env=_env(base),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _wait_gone(before: set[int], timeout: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := mpscontrol.running_daemons() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_commands_are_answered_recorded_and_quit_ends_the_daemon(tmp_path: pathlib.Path) -> None:
    before = mpscontrol.running_daemons()
    subprocess.run([*CONTROL, "-d"], env=_env(tmp_path), check=True)
    answers = _ask(
        tmp_path,
        "get_default_active_thread_percentage",
        "set_default_active_thread_percentage 30",
        "get_default_active_thread_percentage",
        "set_default_device_pinned_mem_limit GPU-1 512M",
        "get_default_device_pinned_mem_limit GPU-1",
    )
    assert answers.split() == ["100", "30", "512M"]
    log = (tmp_path / "log" / "control.log").read_text()
    assert "set_default_active_thread_percentage 30" in log
    _ask(tmp_path, "quit")
    assert _wait_gone(before) == set()


def test_a_daemon_whose_directory_is_removed_exits(tmp_path: pathlib.Path) -> None:
    before = mpscontrol.running_daemons()
    subprocess.run([*CONTROL, "-d"], env=_env(tmp_path), check=True)
    assert mpscontrol.running_daemons() - before
    shutil.rmtree(tmp_path / "pipe")
    assert _wait_gone(before) == set()


def test_an_injected_start_failure(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [*CONTROL, "-d"],
        env=_env(tmp_path, FAKE_MPS_FAIL_START="1"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "failed to start" in done.stderr
