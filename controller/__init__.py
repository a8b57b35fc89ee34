"""The ResourceSlice controller (used by every node's plugin) and the cluster controller process.

Not built yet: see issue "ResourceSlice controller and the cluster controller".
"""

__all__: list[str] = []
