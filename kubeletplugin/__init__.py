"""The node process the kubelet talks to: registration, DRA and health gRPC, prepare/unprepare.

Not built yet: see issue "Kubelet plugin".
"""

__all__: list[str] = []
