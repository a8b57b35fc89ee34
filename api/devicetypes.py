"""The kinds of device the driver publishes: the values of each device's ``type`` attribute.

The device builder writes them into ResourceSlices, DeviceClasses select on them, and each opaque
config kind declares which of them it applies to (``applies_to``), so config resolution never needs
to switch on kinds itself.
"""

from __future__ import annotations

import enum


class DeviceType(enum.StrEnum):
    """Value of the ``type`` attribute of a published device."""

    GPU = "gpu"
    """A whole physical GPU, allocated exclusively to one claim."""
    MIG = "mig"
    """A MIG slice of a GPU (created at prepare, or a static instance made by an admin)."""
    SHARED = "shared"
    """A fraction of a GPU (consumable memory and cores); its sharing strategy is the node's."""
