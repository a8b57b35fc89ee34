"""Translation of `pynvml.NVMLError` into the backend errors of `dra_driver.backends.errors`.

The one place where NVML return codes get a meaning. Every NVML call of the backend runs inside
``with translating.nvml_errors(nvml, Operation.X, gpu_uuid=...)``; an `NVMLError` leaving it
becomes the `errors.BackendError` subclass that tells the caller what to do, chained ``from`` the
original. What a code means depends on the operation (``NOT_FOUND`` while destroying an instance
means "already gone", while looking up a GPU it means "no such GPU"), so the table is keyed by
both. Codes are looked up by name in the `pynvml` module in use, so the table reads like NVML's
documentation and works with any `pynvml` (or stand-in) that defines the ``NVML_ERROR_*`` names.
"""

from __future__ import annotations

import contextlib
import enum
import types
from collections.abc import Iterator

from dra_driver.backends import errors


class Operation(enum.Enum):
    """What the backend was doing when NVML failed (the value completes "failed to ...")."""

    INIT = "initialise NVML"
    DISCOVER = "discover GPUs"
    FIND_GPU = "find the GPU"
    READ_STATUS = "read the GPU status"
    SET_MIG_MODE = "change the MIG mode"
    CREATE_GPU_INSTANCE = "create a MIG GPU instance"
    CREATE_COMPUTE_INSTANCE = "create a MIG compute instance"
    FIND_GPU_INSTANCE = "find the MIG GPU instance"
    DESTROY_INSTANCE = "destroy the MIG instance"
    SET_COMPUTE_MODE = "set the compute mode"
    SHUTDOWN = "shut NVML down"


_MIG_MODE_REFUSALS = ("IN_USE", "NO_PERMISSION", "NOT_SUPPORTED", "RESET_REQUIRED")
_INSTANCE_GONE = ("NOT_FOUND", "NOT_SUPPORTED", "INVALID_ARGUMENT")

#: (operation, NVML error name without ``NVML_ERROR_``) → the error the caller gets.
_SPECIFIC: dict[tuple[Operation, str], type[errors.BackendError]] = {
    # A taken placement is reported as a lack of resources, not as ALREADY_EXISTS.
    (Operation.CREATE_GPU_INSTANCE, "INSUFFICIENT_RESOURCES"): errors.PlacementOccupiedError,
    # Creating instances is refused when MIG mode is off.
    (Operation.CREATE_GPU_INSTANCE, "NOT_SUPPORTED"): errors.MigModeError,
    (Operation.DESTROY_INSTANCE, "NOT_FOUND"): errors.InstanceNotFoundError,
    (Operation.FIND_GPU, "NOT_FOUND"): errors.UnknownGpuError,
    (Operation.FIND_GPU, "INVALID_ARGUMENT"): errors.UnknownGpuError,
    **{(Operation.SET_MIG_MODE, name): errors.MigModeError for name in _MIG_MODE_REFUSALS},
    # Looking an instance up: NOT_SUPPORTED means MIG is off, so no instance can exist.
    **{
        (Operation.FIND_GPU_INSTANCE, name): errors.InstanceNotFoundError for name in _INSTANCE_GONE
    },
}

_HINTS = {
    Operation.INIT: "; is the NVIDIA driver loaded and libnvidia-ml.so.1 visible here?"
    " (without GPUs, use --gpus fake:<spec>)",
}

_DEFAULT: dict[Operation, type[errors.BackendError]] = {
    Operation.INIT: errors.BackendUnavailableError,
    Operation.SET_MIG_MODE: errors.MigError,
    Operation.CREATE_GPU_INSTANCE: errors.MigError,
    Operation.CREATE_COMPUTE_INSTANCE: errors.MigError,
    Operation.FIND_GPU_INSTANCE: errors.MigError,
    Operation.DESTROY_INSTANCE: errors.MigError,
}


def code_name(nvml: types.ModuleType, value: object) -> str:
    """The NVML name of a return code without the prefix, e.g. 6 → ``NOT_FOUND``."""
    for name in dir(nvml):
        if name.startswith("NVML_ERROR_") and getattr(nvml, name) == value:
            return name.removeprefix("NVML_ERROR_")
    return "SUCCESS" if value == getattr(nvml, "NVML_SUCCESS", 0) else f"CODE_{value}"


def error_name(nvml: types.ModuleType, error: BaseException) -> str:
    """The NVML name of an `NVMLError`'s code without the prefix, e.g. ``NOT_FOUND``."""
    return code_name(nvml, getattr(error, "value", None))


def is_error(nvml: types.ModuleType, error: BaseException, *names: str) -> bool:
    """Whether `error` is an `NVMLError` with one of the codes `names` (e.g. ``"NOT_FOUND"``)."""
    return isinstance(error, nvml.NVMLError) and error_name(nvml, error) in names


def is_unsupported(nvml: types.ModuleType, error: BaseException) -> bool:
    """Whether NVML says "not here": the call, profile or argument does not apply to this GPU."""
    return is_error(
        nvml, error, "NOT_SUPPORTED", "INVALID_ARGUMENT", "NOT_FOUND", "FUNCTION_NOT_FOUND"
    )


def translate(
    nvml: types.ModuleType,
    error: BaseException,
    operation: Operation,
    *,
    gpu_uuid: str | None = None,
) -> errors.BackendError:
    """The backend error for an `NVMLError` raised during `operation` (not raised here)."""
    name = error_name(nvml, error)
    kind = _SPECIFIC.get((operation, name), _DEFAULT.get(operation, errors.BackendError))
    where = f" on GPU {gpu_uuid}" if gpu_uuid else ""
    hint = _HINTS.get(operation, "")
    return kind(f"failed to {operation.value}{where}: {_message(error)} (NVML_ERROR_{name}){hint}")


@contextlib.contextmanager
def nvml_errors(
    nvml: types.ModuleType, operation: Operation, *, gpu_uuid: str | None = None
) -> Iterator[None]:
    """Translate the `NVMLError` escaping the block; anything else passes through unchanged."""
    try:
        yield
    except nvml.NVMLError as error:
        raise translate(nvml, error, operation, gpu_uuid=gpu_uuid) from error


def _message(error: BaseException) -> str:
    # pynvml's __str__ asks the library for unusual codes, which fails once NVML is shut down.
    try:
        return str(error)
    except Exception:
        return f"NVML error {getattr(error, 'value', '?')}"
