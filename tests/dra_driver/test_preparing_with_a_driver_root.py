"""Prepare on a node with a driver root: the claim's spec carries the driver, or the claim fails.

Covers: a whole GPU's spec has its ``/dev/nvidia<minor>`` by host path and, once per claim, the
driver's libraries, hooks, control nodes and ``NVIDIA_VISIBLE_DEVICES=void`` (the claim's own edits
after them); a MIG device has its GPU's node and the capability nodes of the instance the fake
backend created; a driver root without libcuda fails the claim before any side effect (no MIG
instance, no spec, nothing in the checkpoint); a missing MIG capability file fails the claim with
its path and the instance created for it is destroyed again.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from dra_driver import claims, preparing
from dra_driver.backends.fake import backend as fake
from dra_driver.cdi import writing
from dra_driver.driverroot import caching, roots
from tests.dra_driver.driverroot import layouts
from tests.dra_driver.test_preparing import NODE, claim, node_config

HOST = "/run/nvidia/driver"


@pytest.fixture
def gpus(tmp_path: pathlib.Path) -> fake.FakeBackend:
    return fake.FakeBackend.from_spec("2xA100-40GB", node_name=NODE, state_dir=tmp_path / "state")


@pytest.fixture
def node(gpus: fake.FakeBackend, tmp_path: pathlib.Path) -> preparing.Preparer:
    layouts.driver(tmp_path / "root")
    layouts.proc(tmp_path / "proc")
    for gi in range(15):
        layouts.mig_capability(
            tmp_path / "proc", gpu_minor=0, gi=gi, ci=0, gi_minor=10 + 2 * gi, ci_minor=11 + 2 * gi
        )
    layouts.file(tmp_path, "/hook/nvidia-cdi-hook", b"#!/bin/sh\n", mode=0o755)
    root = roots.Root.at(HOST, str(tmp_path / "root"))
    driver = caching.Driver(
        caching.Settings(
            roots=roots.Roots(driver=root, dev=root, proc=tmp_path / "proc"),
            hook=tmp_path / "hook/nvidia-cdi-hook",
        )
    )
    return preparing.Preparer(gpus, node_config(tmp_path), boot_id="boot-1", driver=driver)


def _spec(tmp_path: pathlib.Path, uid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (tmp_path / "cdi" / f"k8s.gpu.dra.dev-claim_{uid}.json").read_text()
    )
    return data


def test_a_whole_gpu_gets_its_node_and_the_claim_gets_the_driver(
    node: preparing.Preparer, tmp_path: pathlib.Path
) -> None:
    assert node.prepare([claim("u1", {"device": "gpu-1"})])["u1"].error == ""

    spec = _spec(tmp_path, "u1")
    (device,) = spec["devices"]
    assert device["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia1", "hostPath": f"{HOST}/dev/nvidia1"}
    ]
    common = spec["containerEdits"]
    assert common["env"][0] == "NVIDIA_VISIBLE_DEVICES=void"
    assert {n["path"] for n in common["deviceNodes"]} >= {"/dev/nvidiactl", "/dev/nvidia-uvm"}
    mounts = {m["containerPath"]: m["hostPath"] for m in common["mounts"]}
    libcuda = f"{layouts.LIBS}/libcuda.so.{layouts.VERSION}"
    assert mounts[libcuda] == f"{HOST}{libcuda}"
    assert [h["args"][1] for h in common["hooks"]][:3] == [
        "create-symlinks",
        "enable-cuda-compat",
        "update-ldcache",
    ]


def test_a_mig_device_gets_the_capability_nodes_of_its_instance(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    assert node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])["u1"].error == ""
    (instance,) = gpus.status(gpus.gpus()[0].uuid).mig_instances
    gi, ci = instance.gpu_instance_id, instance.compute_instance_id

    (device,) = _spec(tmp_path, "u1")["devices"]

    assert device["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia0", "hostPath": f"{HOST}/dev/nvidia0"},
        {"path": f"/dev/nvidia-caps/nvidia-cap{10 + 2 * gi}", "type": "c", "major": 237,
         "minor": 10 + 2 * gi},
        {"path": f"/dev/nvidia-caps/nvidia-cap{11 + 2 * gi}", "type": "c", "major": 237,
         "minor": 11 + 2 * gi},
    ]  # fmt: skip
    assert ci == 0


def test_a_driver_root_without_libcuda_fails_the_claim_before_any_side_effect(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "root" / layouts.LIBS.lstrip("/") / f"libcuda.so.{layouts.VERSION}").unlink()

    outcome = node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])["u1"]

    assert "the node's NVIDIA driver is not usable" in outcome.error
    assert f"no libcuda.so.{layouts.VERSION}" in outcome.error
    assert gpus.status(gpus.gpus()[0].uuid).mig_instances == ()
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()
    assert node.prepared() == []


def test_a_missing_capability_file_fails_the_claim_and_destroys_its_instance(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    caps = tmp_path / "proc/driver/nvidia/capabilities/gpu1"
    assert not caps.exists()

    outcome = node.prepare([claim("u1", {"device": "gpu-1-mig-1g5gb-6"})])["u1"]

    assert f"{caps}/mig/gi" in outcome.error
    assert "cannot be read" in outcome.error
    assert gpus.status(gpus.gpus()[1].uuid).mig_instances == ()
    assert node.prepared() == []
    assert node.unprepare([claims.ClaimRef("ns", "claim-u1", claims.ClaimUID("u1"))]) == {"u1": ""}
