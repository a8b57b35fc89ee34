"""Fixtures for the preload library's tests: both builds (every test runs against the plain and
the AddressSanitizer/UBSan build, in one pytest run), and a claim directory per test."""

from __future__ import annotations

import pathlib

import pytest

from tests.preload import building


@pytest.fixture(scope="session", params=list(building.Flavour), ids=lambda f: f.value)
def build(request: pytest.FixtureRequest) -> building.Build:
    flavour: building.Flavour = request.param
    return building.build(flavour)


@pytest.fixture
def claim_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "claim"
