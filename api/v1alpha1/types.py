"""The config kinds of ``gpu.dra.dev/v1alpha1``, their defaults and their JSON form.

`GpuConfig` applies to full GPUs and `MigDeviceConfig` to MIG devices; shared devices take no
config (their sharing strategy belongs to the node). Each kind says which device types it applies
to (``applies_to``), so the resolver and the node never switch on kinds. Defaults are the field
defaults: no ``sharing`` means the claim's pods use the device exclusively. Decoding (`decoding`)
normalizes what users write: quantities become byte counts, omitted strategy settings their
defaults, so ``decoding.decode(config.to_dict()) == config`` for every valid config.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, TypeAlias

from api import devicetypes
from api.v1alpha1 import register
from api.v1alpha1 import sharing as sharing_

_DeviceTypes: TypeAlias = frozenset[devicetypes.DeviceType]


@dataclasses.dataclass(frozen=True)
class GpuConfig:
    """Config for full GPUs (device type ``gpu``): time-slicing, MPS, or exclusive use."""

    kind: ClassVar[str] = register.GPU_CONFIG
    applies_to: ClassVar[_DeviceTypes] = frozenset({devicetypes.DeviceType.GPU})

    sharing: sharing_.Sharing | None = None

    def to_dict(self) -> dict[str, object]:
        return _to_dict(self.kind, self.sharing)


@dataclasses.dataclass(frozen=True)
class MigDeviceConfig:
    """Config for MIG devices (device type ``mig``): MPS or exclusive use.

    Time-slicing is not offered: a MIG device is already its own slice of the GPU, and the GPU's
    time-slice setting has no effect inside it.
    """

    kind: ClassVar[str] = register.MIG_DEVICE_CONFIG
    applies_to: ClassVar[_DeviceTypes] = frozenset({devicetypes.DeviceType.MIG})

    sharing: sharing_.MpsConfig | None = None

    def to_dict(self) -> dict[str, object]:
        return _to_dict(self.kind, self.sharing)


Config: TypeAlias = GpuConfig | MigDeviceConfig

KINDS: tuple[type[Config], ...] = (GpuConfig, MigDeviceConfig)


def kinds_for(device_type: devicetypes.DeviceType) -> list[str]:
    """The kinds that apply to `device_type` (none for shared devices)."""
    return [kind.kind for kind in KINDS if device_type in kind.applies_to]


def _to_dict(kind: str, sharing: sharing_.Sharing | None) -> dict[str, object]:
    result: dict[str, object] = {"apiVersion": register.API_VERSION, "kind": kind}
    if sharing is not None:
        result["sharing"] = sharing_.to_dict(sharing)
    return result
