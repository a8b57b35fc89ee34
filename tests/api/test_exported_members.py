"""The public surface of `api` and `api.v1alpha1`: exactly the modules `__all__` lists, pinned."""

from __future__ import annotations

from types import ModuleType

import pytest

import api
from api import v1alpha1

EXPORTED = {
    api: ["configentries", "devicetypes", "errors", "quantities", "resolving", "v1alpha1"],
    v1alpha1: ["decoding", "register", "sharing", "types", "validate"],
}


@pytest.mark.parametrize("package", list(EXPORTED), ids=lambda p: p.__name__)
def test_all_public_members_are_exported(package: ModuleType) -> None:
    # `annotations` is the `from __future__ import annotations` feature, not an export.
    public = {name for name in vars(package) if not name.startswith("_")} - {"annotations"}
    assert package.__all__ == EXPORTED[package]
    assert set(package.__all__) == public
