"""Failpoints: named places where a test can make the process die as if the node lost power.

``GPU_DRA_FAILPOINT=<name>`` in the environment makes `hit(name)` SIGKILL the process at that
place, so crash tests can stop a plugin between any two steps of prepare and check that a
restarted plugin converges. Unset (always, outside tests), `hit` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "GPU_DRA_FAILPOINT"

#: The places in the prepare flow, in order.
PREPARE_STEPS = (
    "prepare.started-recorded",
    "prepare.isolated",
    "prepare.cdi-written",
    "prepare.completed-recorded",
)


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
