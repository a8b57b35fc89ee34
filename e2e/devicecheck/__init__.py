"""The check for a machine with an NVIDIA GPU (``hack/device-check.sh``): the plugin on real NVML,
claims of a whole GPU, a MIG device and a share prepared through the fake kubelet, and the probe
(``e2e/probe``) run in each claim's container with its CDI edits, judged into one JSON summary.

- `checks`: which claims, what the probe is asked, and the judging of its report (pure);
- `bundling`: ``prepare``, run on a machine with the toolchains: everything built here and packed
  into ``.device/`` to be carried to the GPU machine, which has no network;
- `containers`: running the probe as a claim's container;
- `running`: ``run``, the flow on the GPU machine, and ``run --dry-run``, the same flow with fake
  GPUs and the fake libcuda on any machine (``tests/probe/test_device_check_flow.py``).
"""

__all__ = ["bundling", "checks", "containers", "running"]
