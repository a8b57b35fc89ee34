"""ResourceSlice devices: what a node publishes (pure computation).

`settings` (mode and shared-device policy) → `building` (devices per GPU, with `naming`,
`attributes` and `counters`) → `splitting` (slices within the API's limits) → `wire` (the JSON
shapes); `limits` checks a pool against every API limit.
"""

__all__ = [
    "attributes",
    "building",
    "counters",
    "limits",
    "naming",
    "settings",
    "splitting",
    "wire",
]
