"""Time-slicing: a claim's ``GpuConfig`` interval applied to its whole GPU, reset after.

Only whole GPUs: on MIG devices the GPU's time-slice has no effect, and the shared device's
strategy belongs to the node. The previous setting is not restored but reset to the default,
because the GPU was exclusively the claim's.
"""

from __future__ import annotations

import structlog

from api.v1alpha1 import sharing
from dra_driver import hardware
from dra_driver.backends import GpuBackend

log = structlog.get_logger(__name__)


def apply(
    backend: GpuBackend, gpu_uuid: str, config: sharing.TimeSlicingConfig
) -> hardware.TimesliceInterval:
    """Set the interval; return it (recorded in the checkpoint)."""
    interval = hardware.TimesliceInterval[config.interval.name]
    backend.set_timeslice(gpu_uuid, interval)
    log.info("timeslice.applied", gpu=gpu_uuid, interval=interval.name)
    return interval


def reset(backend: GpuBackend, gpu_uuid: str) -> None:
    backend.set_timeslice(gpu_uuid, hardware.TimesliceInterval.DEFAULT)
    log.info("timeslice.reset", gpu=gpu_uuid)
