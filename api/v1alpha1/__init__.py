"""Version v1alpha1 of the opaque config API, ``gpu.dra.dev/v1alpha1``.

- `register`: group, version and kind names.
- `sharing`: sharing strategies (time-slicing, MPS) and their settings.
- `types`: the config kinds (`types.GpuConfig`, `types.MigDeviceConfig`), defaults, JSON form.
- `validate`: value rules, one function per type.
- `decoding`: strict decoding of raw parameters into a valid config (`decoding.decode`).
"""

from __future__ import annotations

from api.v1alpha1 import decoding, register, sharing, types, validate

__all__ = ["decoding", "register", "sharing", "types", "validate"]
