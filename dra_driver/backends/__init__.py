"""GPU backends: the one seam between the driver and the hardware.

`GpuBackend` is the interface; `open_backend` picks an implementation from the ``--gpus`` flag:
``nvml`` for real GPUs through `pynvml` (imported lazily, so CPU-only machines never need it) or
``fake:<spec>`` (e.g. ``fake:8xA100-40GB``, ``fake:2xH100-80GB,1xL4``) for fake GPUs whose state
lives in a JSON file, so that every code path of the driver runs without a GPU.
"""

from __future__ import annotations

import pathlib
from collections.abc import Hashable, Sequence
from typing import Protocol

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.health import sources

__all__ = ["GpuBackend", "errors", "open_backend"]


class GpuBackend(Protocol):
    """Discovery and the few state changes the driver makes on GPUs."""

    def gpus(self) -> Sequence[hardware.GpuInfo]:
        """Every GPU of the node, ordered by index. Static for the life of the backend."""
        ...

    def status(self, gpu_uuid: str) -> hardware.GpuStatus:
        """MIG mode, MIG instances, compute mode and time-slice of one GPU, read now."""
        ...

    def mig_version(self) -> Hashable | None:
        """A value that changes whenever MIG mode or MIG instances may have changed (by anyone),
        so that the inventory can be kept until then; None: no such value, read `status` again."""
        ...

    def set_mig_mode(self, gpu_uuid: str, *, enabled: bool) -> None:
        """Turn MIG mode on or off; refused while MIG instances exist."""
        ...

    def create_mig_instance(
        self, gpu_uuid: str, *, profile_id: int, placement: hardware.Placement
    ) -> hardware.MigInstance:
        """Create a GPU instance at exactly `placement` and one compute instance spanning it."""
        ...

    def destroy_mig_instance(self, gpu_uuid: str, *, gpu_instance_id: int) -> None:
        """Destroy a GPU instance and its compute instances."""
        ...

    def set_compute_mode(self, gpu_uuid: str, mode: hardware.ComputeMode) -> None: ...

    def set_timeslice(self, gpu_uuid: str, interval: hardware.TimesliceInterval) -> None: ...

    def health_events(self) -> sources.EventSource:
        """A new source of the GPUs' health events (XID, ECC, lost), for the health watcher's
        thread only (`dra_driver.health.watching`); nothing is registered before its `open`."""
        ...

    def close(self) -> None:
        """Release the backend (NVML shutdown); idempotent."""
        ...


def open_backend(spec: str, *, node_name: str, state_dir: pathlib.Path | None = None) -> GpuBackend:
    """Open the backend named by a ``--gpus`` value: ``nvml`` or ``fake:<spec>``.

    `state_dir` is where the fake backend keeps its JSON state (``None``: in memory only).
    """
    if spec == "nvml":
        # Lazy: only real-GPU nodes need pynvml.
        from dra_driver.backends.nvml import backend as nvml_backend  # noqa: PLC0415

        return nvml_backend.NvmlBackend()
    if spec.startswith("fake:"):
        from dra_driver.backends.fake import backend as fake_backend  # noqa: PLC0415

        return fake_backend.FakeBackend.from_spec(
            spec.removeprefix("fake:"), node_name=node_name, state_dir=state_dir
        )
    raise errors.BackendUnavailableError(
        f"unknown --gpus value {spec!r}: use 'nvml' for real GPUs or 'fake:<spec>', "
        "e.g. 'fake:8xA100-40GB' or 'fake:2xH100-80GB,1xL4'"
    )
