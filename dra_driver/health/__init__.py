"""GPU health: from hardware events to the devices the node taints and reports UNHEALTHY.

The flow: a backend's event source (`sources.EventSource`: NVML's event set on real GPUs, the
fake backend's state file otherwise) → the watcher thread (`watching.Watcher`) → the XID
classification (`xids`: application errors change nothing, the rest makes a GPU unhealthy) → the
ledger (`ledger.Ledger`: which GPUs are unhealthy and why, kept across plugin restarts within one
boot, cleared by a recovery or by an admin) → the publisher (taints in the ResourceSlices, the
kubelet's health stream), which reads the ledger.

- `sources`: the events and the `EventSource` seam a backend implements;
- `xids`: which XIDs are the application's fault, names of the known ones;
- `ledger`: the unhealthy GPUs, persisted, and the admin's clear requests;
- `watching`: the thread that waits for events and never stops before it is told to.
"""

from dra_driver.health import ledger, sources, watching, xids

__all__ = ["ledger", "sources", "watching", "xids"]
