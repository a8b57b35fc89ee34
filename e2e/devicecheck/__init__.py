"""The check for a machine with an NVIDIA GPU (``hack/device-check.sh``; "The device check" in
``docs/install.md``): the plugin on real NVML and the machine's driver, claims of a whole GPU, a
share and a MIG device prepared through the fake kubelet, and the probe (``e2e/probe``) run in
real containers of each claim's pod (containerd and runc, the claim's CDI devices), judged into
one JSON summary.

- `checks`: which claims, what the probe in each container is asked, and the judging of the
  reports (pure);
- `bundling`: ``prepare``, run on a machine with the toolchains: everything built here (containerd
  and runc included, and the test image as an OCI archive) and packed into ``.device/`` to be
  carried to the GPU machine, which has no network and no Go;
- `containers`: the pod of a claim (the probe's containers; on fake GPUs, the fake libcuda's GPU);
- `running`: ``run``, the flow on the GPU machine, and ``run --dry-run``, the same flow with fake
  GPUs over a synthetic driver root on any machine (``tests/probe/test_device_check_flow.py``).
"""

__all__ = ["bundling", "checks", "containers", "running"]
