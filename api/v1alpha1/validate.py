"""Value rules of the v1alpha1 config types, one function per type.

Decoding (`decoding`) has already checked the structure: field names, JSON types, enum values,
which strategy settings go with which strategy. What is left are the ranges of the values. Every
function raises `errors.ConfigError` with the path of the bad field, relative to the object it
was given; decoding calls them on the whole config, so users see paths from the config's root.
"""

from __future__ import annotations

import re

from api import errors, quantities
from api.v1alpha1 import sharing, types

MIN_PINNED_MEMORY = 1024 * 1024
"""Smallest pinned memory limit: MPS takes its limits in whole MiB, so less would mean 0."""

# A GPU or MIG UUID as NVML prints it (GPU-<uuid>, MIG-<uuid>, or the older
# MIG-GPU-<uuid>/<gi>/<ci>), or a device index.
_DEVICE_KEY = re.compile(r"(?:GPU|MIG)-[0-9A-Za-z][0-9A-Za-z/_.-]*|0|[1-9][0-9]*")


def validate_gpu_config(config: types.GpuConfig) -> None:
    if isinstance(config.sharing, sharing.MpsConfig):
        with errors.prefixed("sharing.mpsConfig"):
            validate_mps_config(config.sharing)


def validate_mig_device_config(config: types.MigDeviceConfig) -> None:
    if config.sharing is not None:
        with errors.prefixed("sharing.mpsConfig"):
            validate_mps_config(config.sharing)


def validate_mps_config(config: sharing.MpsConfig) -> None:
    percentage = config.default_active_thread_percentage
    if percentage is not None and not 1 <= percentage <= 100:
        raise errors.ConfigError(
            f"must be between 1 and 100, got {percentage}", "defaultActiveThreadPercentage"
        )
    if config.default_pinned_device_memory_limit is not None:
        _check_pinned_memory(
            config.default_pinned_device_memory_limit, "defaultPinnedDeviceMemoryLimit"
        )
    for key, limit in config.default_per_device_pinned_memory_limit.items():
        path = errors.item("defaultPerDevicePinnedMemoryLimit", key)
        if not _DEVICE_KEY.fullmatch(key):
            raise errors.ConfigError(
                "key must be a GPU or MIG UUID (GPU-…, MIG-…) or a device index (0, 1, …)", path
            )
        _check_pinned_memory(limit, path)


def _check_pinned_memory(limit: int, path: str) -> None:
    if limit < MIN_PINNED_MEMORY:
        shown = quantities.format_bytes(limit) if limit >= 0 else str(limit)
        minimum = quantities.format_bytes(MIN_PINNED_MEMORY)
        raise errors.ConfigError(f"must be at least {minimum}, got {shown}", path)
