"""Tests of what the driver's CDI specs take from the NVIDIA driver's installation on the node.

``synthetic`` lays out a driver root, a /dev and a /proc the way a real driver installs them (the
project's fake libcuda/NVML standing in for the real libraries); ``nvidiactk`` runs the NVIDIA
Container Toolkit's ``nvidia-ctk cdi generate`` on such a root, the reference our spec is compared
with.
"""
