"""Child processes that cannot outlive the harness: logs to a file, killed with their parent.

Each child gets ``PR_SET_PDEATHSIG = SIGKILL``: if the test run dies (even by SIGKILL), the kernel
kills the control plane too, so nothing is left behind. A normal stop sends SIGTERM, waits, then
SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import signal
import subprocess
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


class Process:
    """One named child process with its log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: pathlib.Path,
        cwd: pathlib.Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.cwd = cwd
        self.env = env
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets the death signal
                close_fds=True,
                cwd=self.cwd,
                env=None if self.env is None else {**os.environ, **self.env},
            )

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def send_signal(self, signum: int) -> None:
        """Signal the process (SIGSTOP to hang it, SIGCONT to resume it); waits for it to die if
        the signal was SIGKILL."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._popen.send_signal(signum)
        if signum == signal.SIGKILL:
            self._popen.wait()

    def stop(self, *, timeout: float = 10.0) -> None:
        if self._popen is None or self._popen.poll() is not None:
            return
        self._popen.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self._popen.send_signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)
