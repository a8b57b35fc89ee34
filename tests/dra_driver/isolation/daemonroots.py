"""A short directory in /tmp for fake MPS daemons (their pipe directories are named after it),
removed with every daemon under it when the test ends.

The fake daemons are killed first, then the directory removed; a daemon that was still starting
when the others were killed can write into the directory after it was emptied, so both steps
repeat until nothing is left (bounded: a few seconds).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator

from dra_driver.backends.fake import mpscontrol

_PATIENCE_S = 5.0


@contextlib.contextmanager
def short_root() -> Iterator[pathlib.Path]:
    path = pathlib.Path(tempfile.mkdtemp(prefix="gdra-mps-", dir="/tmp"))
    try:
        yield path
    finally:
        deadline = time.monotonic() + _PATIENCE_S
        while True:
            for pid in mpscontrol.running_daemons(under=path):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
