"""The node's driver for the prepare flow: discovered once, rediscovered after an upgrade, never a
cached incomplete answer.

Covers: a second call does not walk the root again; a driver upgrade (new libraries, new kernel
module) is noticed at the next call; a missing device node or hook fails the call and is not
cached (the call after the node appears succeeds); `problem` and `check` report the reason and
clear it; GPU and MIG edits carry the nodes.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from dra_driver.driverroot import caching, discovery, errors, roots
from tests.dra_driver.driverroot import layouts

V = layouts.VERSION


@pytest.fixture
def driver(tmp_path: pathlib.Path) -> caching.Driver:
    layouts.driver(tmp_path / "root")
    layouts.proc(tmp_path / "proc")
    layouts.file(tmp_path, "/hook/nvidia-cdi-hook", b"#!/bin/sh\n", mode=0o755)
    root = roots.Root.at(str(tmp_path / "root"))
    settings = caching.Settings(
        roots=roots.Roots(driver=root, dev=root, proc=tmp_path / "proc"),
        hook=tmp_path / "hook/nvidia-cdi-hook",
    )
    return caching.Driver(settings)


def _mounted(driver: caching.Driver) -> set[str]:
    return {mount.container_path for mount in driver.common_edits().mounts}


def test_discovery_runs_once_until_the_driver_changes(
    driver: caching.Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real = discovery.discover

    def counted(*args: Any, **kwargs: Any) -> discovery.DriverFiles:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(discovery, "discover", counted)

    first = driver.common_edits()
    assert driver.common_edits() == first
    assert len(calls) == 1
    assert driver.problem is None


def test_an_upgrade_is_noticed_at_the_next_call(
    tmp_path: pathlib.Path, driver: caching.Driver
) -> None:
    assert f"{layouts.LIBS}/libcuda.so.{V}" in _mounted(driver)

    new = "590.10.01"
    for name in ("libcuda", "libnvidia-ml"):
        layouts.library(tmp_path / "root", name, version=new)
    layouts.proc(tmp_path / "proc", version=new)

    mounted = _mounted(driver)
    assert f"{layouts.LIBS}/libcuda.so.{new}" in mounted
    assert f"{layouts.LIBS}/libcuda.so.{V}" not in mounted


def test_a_missing_node_fails_and_is_not_cached(
    tmp_path: pathlib.Path, driver: caching.Driver
) -> None:
    uvm = tmp_path / "root/dev/nvidia-uvm"
    uvm.unlink()

    with pytest.raises(errors.IncompleteDriverRootError, match="nvidia-uvm"):
        driver.common_edits()
    problem = driver.problem
    assert problem is not None
    assert "nvidia-uvm" in problem
    assert driver.check() == problem

    uvm.touch()
    assert driver.check() is None
    assert driver.problem is None
    assert "/dev/nvidia-uvm" in {node.path for node in driver.common_edits().device_nodes}


def test_a_missing_hook_fails_with_its_path(tmp_path: pathlib.Path, driver: caching.Driver) -> None:
    (tmp_path / "hook/nvidia-cdi-hook").unlink()

    problem = driver.check()

    assert problem is not None
    assert f"{tmp_path}/hook/nvidia-cdi-hook is missing" in problem


def test_gpu_and_mig_edits_carry_their_nodes(
    tmp_path: pathlib.Path, driver: caching.Driver
) -> None:
    layouts.mig_capability(tmp_path / "proc", gpu_minor=1, gi=3, ci=0, gi_minor=30, ci_minor=31)

    assert [n.path for n in driver.gpu_edits(0).device_nodes] == ["/dev/nvidia0"]
    mig = driver.mig_edits(1, gpu_instance=3, compute_instance=0)
    assert [n.path for n in mig.device_nodes] == [
        "/dev/nvidia1",
        "/dev/nvidia-caps/nvidia-cap30",
        "/dev/nvidia-caps/nvidia-cap31",
    ]
