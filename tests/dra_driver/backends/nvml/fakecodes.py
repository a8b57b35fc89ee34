"""pynvml's names that the fake NVML reproduces: return codes, constants, the `NVMLError` hierarchy.

Names and values equal nvidia-ml-py 13.615.71 (`test_fake_matches_pynvml` checks them), so the
backend under test reads the same ``NVML_*`` constants and catches the same error classes as in
production.
"""

# ruff: noqa: N801 (pynvml's names)

from __future__ import annotations

import ctypes
import string
import types
from typing import ClassVar

# Return codes, as in pynvml (names and values).
ERROR_CODES = {
    "UNINITIALIZED": 1,
    "INVALID_ARGUMENT": 2,
    "NOT_SUPPORTED": 3,
    "NO_PERMISSION": 4,
    "ALREADY_INITIALIZED": 5,
    "NOT_FOUND": 6,
    "INSUFFICIENT_SIZE": 7,
    "DRIVER_NOT_LOADED": 9,
    "TIMEOUT": 10,
    "LIBRARY_NOT_FOUND": 12,
    "FUNCTION_NOT_FOUND": 13,
    "GPU_IS_LOST": 15,
    "RESET_REQUIRED": 16,
    "IN_USE": 19,
    "INSUFFICIENT_RESOURCES": 23,
    "GPU_NOT_FOUND": 28,
    "UNKNOWN": 999,
}
_ERROR_STRINGS = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    7: "Insufficient Size",
    9: "Driver Not Loaded",
    10: "Timeout",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    15: "GPU is lost",
    16: "GPU requires restart",
    19: "In use by another client",
    23: "Insufficient resources",
    28: "GPU not found",
    999: "Unknown Error",
}

CONSTANTS = {
    "NVML_SUCCESS": 0,
    **{f"NVML_ERROR_{name}": value for name, value in ERROR_CODES.items()},
    "NVML_BRAND_TESLA": 2,
    "NVML_BRAND_GEFORCE": 5,
    "NVML_BRAND_NVIDIA": 14,
    "NVML_DEVICE_ARCH_AMPERE": 7,
    "NVML_DEVICE_ARCH_ADA": 8,
    "nvmlEventTypeSingleBitEccError": 1,
    "nvmlEventTypeDoubleBitEccError": 2,
    "nvmlEventTypeXidCriticalError": 8,
    "NVML_DEVICE_ARCH_HOPPER": 9,
    "NVML_DEVICE_ARCH_UNKNOWN": 0xFFFFFFFF,
    "NVML_COMPUTEMODE_DEFAULT": 0,
    "NVML_COMPUTEMODE_PROHIBITED": 2,
    "NVML_COMPUTEMODE_EXCLUSIVE_PROCESS": 3,
    "NVML_DEVICE_MIG_DISABLE": 0,
    "NVML_DEVICE_MIG_ENABLE": 1,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE": 0x0,
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE": 0x1,
    "NVML_GPU_INSTANCE_PROFILE_3_SLICE": 0x2,
    "NVML_GPU_INSTANCE_PROFILE_4_SLICE": 0x3,
    "NVML_GPU_INSTANCE_PROFILE_7_SLICE": 0x4,
    "NVML_GPU_INSTANCE_PROFILE_8_SLICE": 0x5,
    "NVML_GPU_INSTANCE_PROFILE_6_SLICE": 0x6,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1": 0x7,
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1": 0x8,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2": 0x9,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX": 0xA,
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX": 0xB,
    "NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX": 0xC,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME": 0xD,
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME": 0xE,
    "NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME": 0xF,
    "NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME": 0x10,
    "NVML_GPU_INSTANCE_PROFILE_3_SLICE_GFX": 0x11,
    "NVML_GPU_INSTANCE_PROFILE_COUNT": 0x12,
    "NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE": 0x0,
    "NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE": 0x1,
    "NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE": 0x2,
    "NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE": 0x3,
    "NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE": 0x4,
    "NVML_COMPUTE_INSTANCE_PROFILE_COUNT": 0x9,
    "NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED": 0x0,
}


class NVMLError(Exception):
    """Like pynvml's: ``NVMLError(code)`` returns the subclass for the code, with ``.value``."""

    _value_class: ClassVar[dict[int, type[NVMLError]]] = {}
    value: int

    def __new__(cls, value: int) -> NVMLError:
        subclass = NVMLError._value_class.get(value, cls) if cls is NVMLError else cls
        error = Exception.__new__(subclass)
        error.value = value
        return error

    def __str__(self) -> str:
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")


def _error_classes() -> dict[str, type[NVMLError]]:
    """``NVMLError_NotFound`` etc., named and registered the way pynvml generates them."""
    classes = {}
    for name, value in ERROR_CODES.items():
        class_name = "NVMLError_" + string.capwords(name, "_").replace("_", "")

        def new(cls: type[NVMLError], *_args: object, _value: int = value) -> NVMLError:
            return NVMLError.__new__(cls, _value)

        subclass = type(class_name, (NVMLError,), {"__new__": new})
        NVMLError._value_class[value] = subclass
        classes[class_name] = subclass
    return classes


ERROR_CLASSES = _error_classes()


class c_nvmlGpuInstancePlacement_t(ctypes.Structure):
    _fields_ = (("start", ctypes.c_uint), ("size", ctypes.c_uint))


def nvml_error(name: str) -> NVMLError:
    """An `NVMLError` for a code name, e.g. ``raise nvml_error("NOT_FOUND")``."""
    return NVMLError(ERROR_CODES[name])


#: The constants as attributes, e.g. ``C.NVML_DEVICE_MIG_ENABLE``.
C = types.SimpleNamespace(**CONSTANTS)
