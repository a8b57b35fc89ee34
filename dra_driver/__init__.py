"""The node's domain core: GPU discovery, inventory, ResourceSlice devices, CDI, checkpoint, isolation.

Publish: a `backends.GpuBackend` (NVML or fake) reports GPUs (`hardware`) → `inventory` adds their
MIG state → `slices` builds the ResourceSlice devices per mode (`layouts` holds the MIG rules the
counters encode) and packs them into slices.

Prepare: `claims` (what the API server allocated) → `locating` (device name → hardware) →
`preparing` (the flow, under a node-wide lock; `planning` is its side-effect-free part,
`isolating` sets up and releases what the devices get on the node, `describing` writes a claim's
CDI spec and quota config) with `checkpoint`, `isolation` (MIG, MPS, quotas, time-slicing),
`containeredits`, `driverroot` (the NVIDIA driver's files, device nodes and hooks every spec
carries) and `cdi`; `atomicfiles` writes everything crash-safely;
`failpoints` lets crash tests stop the flow anywhere.

The two processes: `logs` configures structlog once per process, `flags` checks the flag values
both parse, `processes` holds their exit codes and signal handling.

Nothing here knows gRPC; `api` is the only package of ours it imports.
"""

__all__ = [
    "atomicfiles",
    "backends",
    "cdi",
    "checkpoint",
    "claims",
    "containeredits",
    "describing",
    "driverroot",
    "failpoints",
    "flags",
    "hardware",
    "inventory",
    "isolating",
    "isolation",
    "layouts",
    "locating",
    "logs",
    "planning",
    "preparing",
    "processes",
    "slices",
]
