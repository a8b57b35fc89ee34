"""Opening and closing the NVML backend, and what happens when NVML is not there.

Covers: the backend modules import without `pynvml`; a missing `pynvml` and a failing
``nvmlInit`` are `BackendUnavailableError`s chained from the cause (also through
``open_backend("nvml")``); a discovery failure shuts NVML down again; `close()` shuts down once
however often it is called; a closed backend refuses work.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections.abc import Callable

import pytest

from dra_driver import backends
from dra_driver.backends import errors
from dra_driver.backends.nvml import backend
from tests.dra_driver.backends.nvml import conftest, fakecodes, fakenvml


def test_modules_import_without_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    for name in [name for name in sys.modules if name.startswith("dra_driver.backends.nvml")]:
        monkeypatch.delitem(sys.modules, name)
    reimported = importlib.import_module("dra_driver.backends.nvml.backend")
    assert reimported is not backend
    assert "pynvml" not in vars(reimported)


def _open_directly() -> None:
    backend.NvmlBackend()


def _open_by_flag() -> None:
    backends.open_backend("nvml", node_name="node-a")


@pytest.mark.parametrize("open_nvml", [_open_directly, _open_by_flag], ids=["class", "flag"])
def test_missing_pynvml(monkeypatch: pytest.MonkeyPatch, open_nvml: Callable[[], None]) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    with pytest.raises(errors.BackendUnavailableError, match="nvidia-ml-py") as raised:
        open_nvml()
    assert isinstance(raised.value.__cause__, ImportError)


@pytest.mark.parametrize("code", ["LIBRARY_NOT_FOUND", "DRIVER_NOT_LOADED", "NO_PERMISSION"])
def test_nvml_init_failure(
    fake_nvml: fakenvml.FakeNvml, sysfs_root: pathlib.Path, code: str
) -> None:
    fake_nvml.fail("nvmlInit", code)
    with pytest.raises(errors.BackendUnavailableError, match=f"NVML_ERROR_{code}") as raised:
        backend.NvmlBackend(sysfs_root=sysfs_root)
    assert isinstance(raised.value.__cause__, fakecodes.NVMLError)
    assert raised.value.__cause__.value == fakecodes.ERROR_CODES[code]
    assert "libnvidia-ml.so.1" in str(raised.value)


def test_discovery_failure_shuts_nvml_down(
    fake_nvml: fakenvml.FakeNvml, sysfs_root: pathlib.Path
) -> None:
    fake_nvml.fail("nvmlDeviceGetUUID", "GPU_IS_LOST")
    with pytest.raises(errors.BackendError, match="failed to discover GPUs: GPU is lost"):
        backend.NvmlBackend(sysfs_root=sysfs_root)
    assert fake_nvml.initialized == 0


def test_close_is_idempotent(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    assert fake_nvml.initialized == 1
    nvml_backend.close()
    nvml_backend.close()
    assert fake_nvml.initialized == 0
    assert fake_nvml.calls.count("nvmlShutdown") == 1


def test_failing_shutdown_is_logged_not_raised(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    fake_nvml.fail("nvmlShutdown", "UNKNOWN")
    nvml_backend.close()


def test_closed_backend_refuses_work(nvml_backend: backend.NvmlBackend) -> None:
    nvml_backend.close()
    assert len(nvml_backend.gpus()) == 2
    with pytest.raises(errors.BackendUnavailableError, match="closed"):
        nvml_backend.status(conftest.A100_UUID)


@pytest.mark.usefixtures("fake_nvml")
def test_is_a_gpu_backend(sysfs_root: pathlib.Path) -> None:
    opened: backends.GpuBackend = backend.NvmlBackend(sysfs_root=sysfs_root)
    opened.close()
