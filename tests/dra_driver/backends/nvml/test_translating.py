"""NVML errors become backend errors that say what the caller should do.

Covers: the (operation, NVML code) table, the default per operation, messages that carry the
operation, the GPU, NVML's text and the code name, chaining with ``from``, and that errors other
than `NVMLError` pass through `nvml_errors` untouched.
"""

from __future__ import annotations

import types

import pytest

from dra_driver.backends import errors
from dra_driver.backends.nvml import translating
from dra_driver.backends.nvml.translating import Operation
from tests.dra_driver.backends.nvml import fakecodes, fakenvml


@pytest.fixture
def nvml() -> types.ModuleType:
    return fakenvml.FakeNvml([]).module()


@pytest.mark.parametrize(
    ("operation", "code", "expected"),
    [
        (Operation.CREATE_GPU_INSTANCE, "INSUFFICIENT_RESOURCES", errors.PlacementOccupiedError),
        (Operation.CREATE_GPU_INSTANCE, "NOT_SUPPORTED", errors.MigModeError),
        (Operation.CREATE_GPU_INSTANCE, "INVALID_ARGUMENT", errors.MigError),
        (Operation.CREATE_COMPUTE_INSTANCE, "INSUFFICIENT_RESOURCES", errors.MigError),
        (Operation.DESTROY_INSTANCE, "NOT_FOUND", errors.InstanceNotFoundError),
        (Operation.DESTROY_INSTANCE, "IN_USE", errors.MigError),
        (Operation.FIND_GPU_INSTANCE, "NOT_FOUND", errors.InstanceNotFoundError),
        (Operation.FIND_GPU_INSTANCE, "NOT_SUPPORTED", errors.InstanceNotFoundError),
        (Operation.FIND_GPU_INSTANCE, "GPU_IS_LOST", errors.MigError),
        (Operation.SET_MIG_MODE, "IN_USE", errors.MigModeError),
        (Operation.SET_MIG_MODE, "NO_PERMISSION", errors.MigModeError),
        (Operation.SET_MIG_MODE, "RESET_REQUIRED", errors.MigModeError),
        (Operation.SET_MIG_MODE, "UNKNOWN", errors.MigError),
        (Operation.FIND_GPU, "NOT_FOUND", errors.UnknownGpuError),
        (Operation.INIT, "DRIVER_NOT_LOADED", errors.BackendUnavailableError),
        (Operation.DISCOVER, "GPU_IS_LOST", errors.BackendError),
        (Operation.SET_COMPUTE_MODE, "NO_PERMISSION", errors.BackendError),
    ],
    ids=lambda value: value.name.lower() if isinstance(value, Operation) else None,
)
def test_error_classes(
    nvml: types.ModuleType, operation: Operation, code: str, expected: type[errors.BackendError]
) -> None:
    translated = translating.translate(nvml, fakecodes.nvml_error(code), operation)
    assert type(translated) is expected


def test_message_names_operation_gpu_text_and_code(nvml: types.ModuleType) -> None:
    translated = translating.translate(
        nvml, fakecodes.nvml_error("IN_USE"), Operation.DESTROY_INSTANCE, gpu_uuid="GPU-1"
    )
    assert str(translated) == (
        "failed to destroy the MIG instance on GPU GPU-1: In use by another client"
        " (NVML_ERROR_IN_USE)"
    )


def test_unknown_code_is_named_by_number(nvml: types.ModuleType) -> None:
    translated = translating.translate(nvml, fakecodes.NVMLError(4242), Operation.READ_STATUS)
    assert str(translated).endswith("NVML Error with code 4242 (NVML_ERROR_CODE_4242)")


def test_nvml_errors_chains_the_original(nvml: types.ModuleType) -> None:
    original = fakecodes.nvml_error("NOT_FOUND")
    with (
        pytest.raises(errors.InstanceNotFoundError) as raised,
        translating.nvml_errors(nvml, Operation.DESTROY_INSTANCE),
    ):
        raise original
    assert raised.value.__cause__ is original


def test_nvml_errors_lets_other_errors_through(nvml: types.ModuleType) -> None:
    with pytest.raises(KeyError), translating.nvml_errors(nvml, Operation.DISCOVER):
        raise KeyError("x")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("NOT_SUPPORTED", True), ("INVALID_ARGUMENT", True), ("NOT_FOUND", True), ("IN_USE", False)],
)
def test_is_unsupported(nvml: types.ModuleType, code: str, expected: bool) -> None:
    assert translating.is_unsupported(nvml, fakecodes.nvml_error(code)) is expected
