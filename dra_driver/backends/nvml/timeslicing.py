"""Setting a GPU's time-slice level with ``nvidia-smi compute-policy``.

NVML has no call for it outside vGPU (``nvmlDeviceSetVgpuSchedulerState`` is vGPU-only), so the
backend runs ``nvidia-smi compute-policy -i <uuid> --set-timeslice <level>`` and checks the exit
status. The executable is a parameter, so tests can run a stand-in script.
"""

from __future__ import annotations

import os
import subprocess

from dra_driver import hardware
from dra_driver.backends import errors

#: nvidia-smi answers in well under a second; a hung driver must not hang a claim forever.
DEFAULT_TIMEOUT_S = 30.0


def command(
    nvidia_smi: str | os.PathLike[str], *, gpu_uuid: str, interval: hardware.TimesliceInterval
) -> list[str]:
    """The argv that sets `interval` on one GPU."""
    return [
        os.fspath(nvidia_smi),
        "compute-policy",
        "-i",
        gpu_uuid,
        "--set-timeslice",
        str(interval.value),
    ]


def set_timeslice(
    nvidia_smi: str | os.PathLike[str],
    *,
    gpu_uuid: str,
    interval: hardware.TimesliceInterval,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Run nvidia-smi; a missing executable, a timeout or a non-zero exit is a `BackendError`."""
    argv = command(nvidia_smi, gpu_uuid=gpu_uuid, interval=interval)
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise errors.BackendError(
            f"{argv[0]} did not set the time-slice of GPU {gpu_uuid} within {timeout_s:g} s"
        ) from error
    except OSError as error:
        raise errors.BackendError(
            f"cannot run {argv[0]} to set the time-slice of GPU {gpu_uuid}: {error}"
        ) from error
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip() or "no output"
        raise errors.BackendError(
            f"{argv[0]} failed to set the time-slice of GPU {gpu_uuid} to {interval.name}"
            f" (exit status {result.returncode}): {output}"
        )
