"""The public surface of `dra_driver.cdi`: exactly the modules `__all__` lists, pinned."""

from __future__ import annotations

from dra_driver import cdi


def test_all_public_members_are_exported() -> None:
    public = {name for name in vars(cdi) if not name.startswith("_")}
    assert cdi.__all__ == ["errors", "naming", "spec", "writing"]
    assert set(cdi.__all__) == public
