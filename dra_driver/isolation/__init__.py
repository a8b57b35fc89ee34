"""Isolation managers: what makes a claim get only what it was allocated, on the node.

Each manager is independent of the others and is driven by the prepare flow (`preparing`):
`migs` creates and destroys MIG instances at the allocated placement; `quotas` writes the
per-claim memory-quota config that the preload library enforces; `timeslicing` applies a claim's
time-slice setting to a whole GPU; `mps` runs MPS control daemons (per GPU for shares, per
claim for an MPS config).
"""

from dra_driver.isolation import migs, mps, quotas, quotastate, timeslicing

__all__ = ["migs", "mps", "quotas", "quotastate", "timeslicing"]
