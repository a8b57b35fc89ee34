"""The public surface of `dra_driver.checkpoint`: exactly the modules `__all__` lists, pinned."""

from __future__ import annotations

from dra_driver import checkpoint


def test_all_public_members_are_exported() -> None:
    public = {name for name in vars(checkpoint) if not name.startswith("_")}
    assert checkpoint.__all__ == ["errors", "model", "scheme", "store", "v1", "v2"]
    assert set(checkpoint.__all__) == public
