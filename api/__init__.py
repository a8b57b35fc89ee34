"""The driver's public config API: what users write in opaque configs, and how it is resolved.

Pure data and computation; it imports nothing but the standard library, and every other package of
the driver may import it.

- `errors`: `errors.ConfigError`, the one error of this package, with the path of the bad field.
- `devicetypes`: `devicetypes.DeviceType`, the ``type`` attribute of published devices.
- `quantities`: Kubernetes quantity strings, parsed exactly and formatted canonically.
- `v1alpha1`: the ``gpu.dra.dev/v1alpha1`` config kinds, their strict decoding and validation.
- `configentries`: our driver's entries of a claim's allocated config list, decoded.
- `resolving`: the precedence rule that picks one config per allocated device.

Flow at prepare: the claim's ``status.allocation.devices.config`` goes to `resolving.resolve` (or
`configentries.decode` once, then `resolving.select` per result), which returns a
`v1alpha1.types.GpuConfig`, a `v1alpha1.types.MigDeviceConfig` or None (exclusive use).
"""

from __future__ import annotations

from api import configentries, devicetypes, errors, quantities, resolving, v1alpha1

__all__ = ["configentries", "devicetypes", "errors", "quantities", "resolving", "v1alpha1"]
