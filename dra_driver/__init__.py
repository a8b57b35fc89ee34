"""The node's domain core: GPU discovery, inventory, ResourceSlice devices, CDI, checkpoint, isolation.

Flow: a `backends.GpuBackend` (NVML or fake) reports GPUs (`gpus`) → `inventory` turns them into
what the node offers (GPUs, MIG placements, counter sets) → `slices` builds the ResourceSlice
devices per mode and packs them into slices. Nothing here knows gRPC; `api` is the only package of
ours it imports.
"""

__all__: list[str] = []
