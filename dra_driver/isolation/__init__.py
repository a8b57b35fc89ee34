"""Isolation managers: what makes a claim get only what it was allocated, on the node.

Each manager is independent of the others and is driven by the prepare flow (`preparing`):
`migs` creates and destroys MIG instances at the allocated placement; `quotas` writes the
per-claim memory-quota config that the preload library enforces; `timeslicing` applies a claim's
time-slice setting to a whole GPU. MPS daemons are not built yet: a claim that asks for MPS fails
with a message saying so.
"""

from dra_driver.isolation import migs, quotas, timeslicing

__all__ = ["migs", "quotas", "timeslicing"]
