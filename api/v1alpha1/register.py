"""The group, version and kinds of the driver's opaque config API, ``gpu.dra.dev/v1alpha1``.

Users put these objects in ``opaque.parameters`` of a ResourceClaim's or DeviceClass's config,
with ``opaque.driver`` set to the driver's name. `decoding` maps each kind to its type.
"""

from __future__ import annotations

GROUP = "gpu.dra.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

GPU_CONFIG = "GpuConfig"
"""Config for full GPUs (device type ``gpu``)."""
MIG_DEVICE_CONFIG = "MigDeviceConfig"
"""Config for MIG devices (device type ``mig``)."""

KINDS = (GPU_CONFIG, MIG_DEVICE_CONFIG)
