"""The NVML backend: real NVIDIA GPUs through `pynvml`, behind the `backends.GpuBackend` seam.

- `backend`: `NvmlBackend`, the class `backends.open_backend("nvml")` builds;
- `discovery`: `GpuInfo` and `MigProfile` from NVML, once at start-up;
- `instances`: MIG GPU/compute instances (list, create at a placement, destroy);
- `translating`: `NVMLError` → `backends.errors`, the one place NVML codes get a meaning;
- `naming`: readable brands, architectures and MIG profile names;
- `sysfs`: PCI bus ID, PCIe root and NUMA node;
- `events`: XID and ECC events (an NVML event set) for the health watcher;
- `timeslicing`: ``nvidia-smi compute-policy`` for time-slices;
- `selfcheck`: ``python -m dra_driver.backends.nvml.selfcheck`` on a GPU machine.

Nothing here imports `pynvml` at import time.
"""

__all__: list[str] = []
