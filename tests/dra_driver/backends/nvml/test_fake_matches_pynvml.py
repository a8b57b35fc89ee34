"""The fake `pynvml` stays honest: same names, signatures, constants and error classes as the real.

Covers: every NVML function the fake offers exists in nvidia-ml-py with the same parameters; every
constant has the real value; ``NVMLError(code)`` returns the per-code subclass with ``.value``, as
pynvml's does; and the backend calls no NVML function (nor reads an ``nvmlEventType*`` constant) the fake lacks.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import types

import pytest

from tests.dra_driver.backends.nvml import fakecodes, fakenvml

BACKEND_DIR = pathlib.Path(__file__).parents[4] / "dra_driver" / "backends" / "nvml"


@pytest.fixture(scope="module")
def pynvml() -> types.ModuleType:
    module: types.ModuleType = pytest.importorskip("pynvml")
    return module


FUNCTIONS = sorted(name for name in dir(fakenvml.FakeNvml) if name.startswith("nvml"))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signatures(pynvml: types.ModuleType, name: str) -> None:
    fake = inspect.signature(getattr(fakenvml.FakeNvml, name))
    real = inspect.signature(getattr(pynvml, name))
    fake_parameters = [(p.name, p.default) for p in fake.parameters.values()][1:]  # self
    assert fake_parameters == [(p.name, p.default) for p in real.parameters.values()]


def test_constants(pynvml: types.ModuleType) -> None:
    assert {name: getattr(pynvml, name) for name in fakecodes.CONSTANTS} == fakecodes.CONSTANTS


@pytest.mark.parametrize("code", sorted(fakecodes.ERROR_CODES))
def test_error_classes(pynvml: types.ModuleType, code: str) -> None:
    real = pynvml.NVMLError(fakecodes.ERROR_CODES[code])
    fake = fakecodes.nvml_error(code)
    assert type(fake).__name__ == type(real).__name__
    assert fake.value == real.value
    assert isinstance(fake, fakecodes.NVMLError)
    assert fakecodes.ERROR_CLASSES[type(fake).__name__] is type(fake)


def test_backend_uses_only_what_the_fake_has() -> None:
    source = "\n".join(path.read_text() for path in BACKEND_DIR.glob("*.py"))
    used = set(re.findall(r"\bnvml\.(nvml\w+)", source))
    assert used - set(FUNCTIONS) - set(fakecodes.CONSTANTS) == set()
