"""The local control plane harness: build, start, wait, talk to, and tear down a real cluster.

Used by the e2e pytest fixtures (``e2e/conftest.py``) and by the demo (``python -m e2e.harness``).
"""

__all__ = ["binaries", "controlplane", "credentials", "objects", "processes"]
