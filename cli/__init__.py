"""The operator's command line: ``gpu-dra`` (also ``kubectl gpu-dra``), the GPU occupancy map.

It sits on top of the layers, beside the kubelet plugin and independent of it: it reads the
cluster through `controller.rest` and understands what a node published through `dra_driver.slices`.
The flow is one way: `reading` (objects from the API server) and `usage` (the plugins' share
metrics) → `mapping` (the pure `occupancy` model, with `pools` doing the scheduler's counter
arithmetic and `holders` joining claims to pods) → `drawing` (the terminal picture) or `encoding`
(``-o json``). `__main__` wires flags, clients and output.
"""

__all__ = [
    "drawing",
    "encoding",
    "holders",
    "mapping",
    "occupancy",
    "pools",
    "reading",
    "usage",
]
