"""The node's prepare/unprepare flow on fake GPUs (no gRPC, no API server).

Covers: whole GPU, dynamic MIG (instance created at the allocated placement, destroyed after),
an admin's static MIG instance (used, never destroyed), shared and fixed shares (limits from
consumedCapacity into the quota config and env), time-slicing applied and reset; idempotency;
per-claim errors (unknown device, foreign pool, device held by another claim, bad config, MPS,
missing consumedCapacity) that fail only their claim and leave nothing behind; distinct shares of
one device; unprepare idempotent; a failure mid-prepare rolled back; start-up reconciliation of an
interrupted prepare and of orphaned CDI specs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import structlog
import structlog.testing

from dra_driver import atomicfiles, claims, hardware, preparing
from dra_driver.backends.fake import backend as fake
from dra_driver.backends.fake import mpscontrol
from dra_driver.cdi import spec, writing
from dra_driver.checkpoint import errors as checkpoint_errors
from dra_driver.checkpoint import model, store
from dra_driver.isolation import mps
from dra_driver.slices import settings

NODE = "node-a"
DRIVER = "gpu.dra.dev"


@pytest.fixture
def gpus(tmp_path: pathlib.Path) -> fake.FakeBackend:
    return fake.FakeBackend.from_spec(
        "2xA100-40GB,1xL4", node_name=NODE, state_dir=tmp_path / "state"
    )


def node_config(tmp_path: pathlib.Path, **fields: Any) -> preparing.NodeConfig:
    """The node's config under `tmp_path`, fake GPUs; `fields` as `NodeConfig` takes them."""
    defaults: dict[str, Any] = {
        "node_name": NODE,
        "driver_name": DRIVER,
        "plugin_dir": tmp_path / "plugin",
        "cdi_dir": tmp_path / "cdi",
        "publish": settings.PublishSettings(),
        "real_gpus": False,
    }
    return preparing.NodeConfig(**(defaults | fields))


def _preparer(
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    layout: store.Layout = store.Layout.DIRECTORY,
    **publish: Any,
) -> preparing.Preparer:
    config = node_config(
        tmp_path, publish=settings.PublishSettings(**publish), checkpoint_layout=layout
    )
    return preparing.Preparer(gpus, config, boot_id="boot-1")


@pytest.fixture(params=list(store.Layout), ids=lambda layout: f"checkpoint-{layout.value}")
def node(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> preparing.Preparer:
    """The prepare flow, once for each layout of the checkpoint."""
    layout: store.Layout = request.param
    return _preparer(gpus, tmp_path, layout)


def on_disk(node: preparing.Preparer) -> store.NodeCheckpoint:
    """The node's checkpoint as a second process sees it (in the layout the node writes)."""
    return store.NodeCheckpoint(
        node.config.plugin_dir,
        boot_id=node.boot_id,
        lock=atomicfiles.NodeLock(node.config.lock_path),
        layout=node.config.checkpoint_layout,
    )


def claim(
    uid: str, *results: dict[str, Any], config: list[dict[str, Any]] | None = None
) -> claims.AllocatedClaim:
    obj = {
        "metadata": {"namespace": "ns", "name": f"claim-{uid}", "uid": uid},
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"driver": DRIVER, "pool": NODE, "request": "r", **result}
                        for result in results
                    ],
                    "config": config or [],
                }
            }
        },
    }
    ref = claims.ClaimRef("ns", f"claim-{uid}", claims.ClaimUID(uid))
    return claims.allocated(obj, ref=ref, driver=DRIVER)


def spec_env(tmp_path: pathlib.Path, uid: str) -> dict[str, str]:
    spec = json.loads((tmp_path / "cdi" / f"k8s.gpu.dra.dev-claim_{uid}.json").read_text())
    env = [e for d in spec["devices"] for e in d["containerEdits"].get("env", [])]
    env += spec.get("containerEdits", {}).get("env", [])
    return dict(item.split("=", 1) for item in env)


def spec_mounts(tmp_path: pathlib.Path, uid: str) -> dict[str, tuple[str, str]]:
    """Container path → (host path, ro or rw) of the claim's spec-level mounts."""
    spec = json.loads((tmp_path / "cdi" / f"k8s.gpu.dra.dev-claim_{uid}.json").read_text())
    mounts = spec.get("containerEdits", {}).get("mounts", [])
    return {m["containerPath"]: (m["hostPath"], m["options"][0]) for m in mounts}


def test_whole_gpu(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    out = node.prepare([claim("u1", {"device": "gpu-1"})])["u1"]
    assert out.error == ""
    (device,) = out.devices
    assert device.cdi_ids == ("k8s.gpu.dra.dev/claim=u1-gpu-1",)
    assert device.request_names == ("r",)
    env = spec_env(tmp_path, "u1")
    assert env["GPU_DRA_GPU_1_UUID"] == gpus.gpus()[1].uuid
    assert env["GPU_DRA_GPU_1_TYPE"] == "gpu"


def test_dynamic_mig_is_created_at_the_placement_and_destroyed_after(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    a100 = gpus.gpus()[0].uuid
    (device,) = node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])["u1"].devices
    (instance,) = gpus.status(a100).mig_instances
    assert (instance.profile_name, instance.placement) == ("3g.20gb", hardware.Placement(4, 4))
    assert device.mig_uuid == instance.uuid
    env = spec_env(tmp_path, "u1")
    assert env["GPU_DRA_GPU_0_MIG_3G20GB_4_UUID"] == instance.uuid
    assert env["GPU_DRA_GPU_0_MIG_3G20GB_4_PARENT_UUID"] == a100
    assert node.unprepare([claims.ClaimRef("ns", "claim-u1", claims.ClaimUID("u1"))]) == {"u1": ""}
    assert gpus.status(a100).mig_instances == ()
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()


def test_an_admins_mig_instance_is_used_and_never_destroyed(
    node: preparing.Preparer, gpus: fake.FakeBackend
) -> None:
    a100 = gpus.gpus()[0].uuid
    gpus.set_mig_mode(a100, enabled=True)
    admin = gpus.create_mig_instance(a100, profile_id=14, placement=hardware.Placement(2, 2))
    (device,) = node.prepare([claim("u1", {"device": "gpu-0-mig-2g10gb-2"})])["u1"].devices
    assert device.mig_uuid == admin.uuid
    node.unprepare([claims.ClaimRef("ns", "claim-u1", claims.ClaimUID("u1"))])
    assert gpus.status(a100).mig_instances == (admin,)


def test_shared_claims_name_the_claims_with_shares_and_their_state_files(
    node: preparing.Preparer, tmp_path: pathlib.Path
) -> None:
    share = {"device": "gpu-2-shared", "consumedCapacity": {"memory": "1Gi"}}
    node.prepare([claim("whole", {"device": "gpu-0"}), claim("share", share)])

    ((prepared, state),) = node.shared_claims()

    assert prepared.uid == "share"
    assert state == tmp_path / "plugin/claims/share/state"
    assert state.stat().st_size > 0


def test_shares_get_their_consumed_capacity_as_limits(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    share = {"device": "gpu-2-shared", "consumedCapacity": {"memory": "4Gi", "cores": "30"}}
    out = node.prepare(
        [
            claim("u1", {**share, "shareID": "aaaaaaaa-1"}),
            claim("u2", {**share, "shareID": "bbbbbbbb-2"}),
        ]
    )
    assert out["u1"].error == out["u2"].error == ""
    assert out["u1"].devices[0].cdi_ids == ("k8s.gpu.dra.dev/claim=u1-gpu-2-shared-aaaaaaaa",)
    env = spec_env(tmp_path, "u1")
    assert env["GPU_DRA_GPU_2_SHARED_MEMORY_LIMIT"] == str(4 * 1024**3)
    assert env["GPU_DRA_GPU_2_SHARED_CORES"] == "30"
    assert env["GPU_DRA_GPU_2_SHARED_SHARE_ID"] == "aaaaaaaa-1"
    assert "GPUQ_CONFIG" not in env  # the library finds its config under the claims root
    mounts = spec_mounts(tmp_path, "u1")
    claim_dir = "/var/run/gpu-dra/claims/u1"
    assert mounts[claim_dir] == (str(tmp_path / "plugin/claims/u1"), "ro")
    assert mounts[f"{claim_dir}/state"] == (str(tmp_path / "plugin/claims/u1/state"), "rw")
    conf = (tmp_path / "plugin" / "claims" / "u1" / "quota.conf").read_text()
    assert f"device.{gpus.gpus()[2].uuid}.memory_bytes={4 * 1024**3}" in conf


def test_fixed_shares_in_compat_mode(gpus: fake.FakeBackend, tmp_path: pathlib.Path) -> None:
    node = _preparer(
        gpus,
        tmp_path,
        mode=settings.Mode.COMPAT,
        shared=settings.SharedSettings(compat_shares=4),
    )
    assert node.prepare([claim("u1", {"device": "gpu-2-share-3"})])["u1"].error == ""
    env = spec_env(tmp_path, "u1")
    assert env["GPU_DRA_GPU_2_SHARE_3_MEMORY_LIMIT"] == str(23034 // 4 * 1024**2)
    assert env["GPU_DRA_GPU_2_SHARE_3_CORES"] == "25"


def test_timeslicing_is_applied_and_reset(node: preparing.Preparer, gpus: fake.FakeBackend) -> None:
    config = [
        {
            "source": "FromClaim",
            "requests": [],
            "opaque": {
                "driver": DRIVER,
                "parameters": {
                    "apiVersion": "gpu.dra.dev/v1alpha1",
                    "kind": "GpuConfig",
                    "sharing": {
                        "strategy": "TimeSlicing",
                        "timeSlicingConfig": {"interval": "Long"},
                    },
                },
            },
        }
    ]
    l4 = gpus.gpus()[2].uuid
    assert node.prepare([claim("u1", {"device": "gpu-2"}, config=config)])["u1"].error == ""
    assert gpus.status(l4).timeslice is hardware.TimesliceInterval.LONG
    node.unprepare([claims.ClaimRef("ns", "claim-u1", claims.ClaimUID("u1"))])
    assert gpus.status(l4).timeslice is hardware.TimesliceInterval.DEFAULT


def test_prepare_is_idempotent(node: preparing.Preparer, gpus: fake.FakeBackend) -> None:
    first = node.prepare([claim("u1", {"device": "gpu-0-mig-1g5gb-6"})])["u1"]
    again = node.prepare([claim("u1", {"device": "gpu-0-mig-1g5gb-6"})])["u1"]
    assert first == again
    assert len(gpus.status(gpus.gpus()[0].uuid).mig_instances) == 1


MPS: dict[str, Any] = {
    "source": "FromClaim",
    "requests": ["r"],
    "opaque": {
        "driver": DRIVER,
        "parameters": {
            "apiVersion": "gpu.dra.dev/v1alpha1",
            "kind": "GpuConfig",
            "sharing": {"strategy": "MPS"},
        },
    },
}
MPS_BAD = {
    "source": "FromClaim",
    "requests": ["r"],
    "opaque": {
        "driver": DRIVER,
        "parameters": {
            "apiVersion": "gpu.dra.dev/v1alpha1",
            "kind": "GpuConfig",
            "sharing": {
                "strategy": "MPS",
                "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"3": "1Gi"}},
            },
        },
    },
}
BAD = {
    "source": "FromClaim",
    "requests": [],
    "opaque": {
        "driver": DRIVER,
        "parameters": {
            "apiVersion": "gpu.dra.dev/v1alpha1",
            "kind": "GpuConfig",
            "sharing": {"strategy": "Magic"},
        },
    },
}


@pytest.mark.parametrize(
    ("result", "config", "message"),
    [
        pytest.param({"device": "gpu-7"}, None, "this node has no GPU 7", id="no-such-gpu"),
        pytest.param({"device": "gpu-2-mig-1g5gb-0"}, None, "has no MIG profile", id="l4-mig"),
        pytest.param({"device": "gpu-0-mig-3g20gb-2"}, None, "cannot start at 2", id="placement"),
        pytest.param({"device": "nvidia0"}, None, "not a device of this driver", id="foreign"),
        pytest.param({"device": "gpu-0", "pool": "other"}, None, "from pool 'other'", id="pool"),
        pytest.param({"device": "gpu-0"}, [MPS_BAD], "MPS config: ", id="mps-unknown-device"),
        pytest.param(
            {"device": "gpu-0"},
            [BAD],
            "config[0].opaque.parameters.sharing.strategy",
            id="bad-config",
        ),
        pytest.param(
            {"device": "gpu-2-shared"}, None, "no usable consumedCapacity", id="no-capacity"
        ),
    ],
)
def test_a_bad_claim_fails_alone_and_leaves_nothing(
    node: preparing.Preparer,
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    result: dict[str, Any],
    config: list[dict[str, Any]] | None,
    message: str,
) -> None:
    out = node.prepare([claim("bad", result, config=config), claim("good", {"device": "gpu-1"})])
    assert message in out["bad"].error
    assert out["bad"].devices == ()
    assert out["good"].error == ""
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == {"good"}
    assert set(on_disk(node).load().claims) == {"good"}


def test_a_device_held_by_another_claim_is_refused_but_distinct_shares_are_not(
    node: preparing.Preparer,
) -> None:
    assert node.prepare([claim("u1", {"device": "gpu-0"})])["u1"].error == ""
    assert (
        "already prepared for claim ns/claim-u1 (u1)"
        in node.prepare([claim("u2", {"device": "gpu-0"})])["u2"].error
    )
    admin = node.prepare([claim("u3", {"device": "gpu-0", "adminAccess": True})])["u3"]
    assert admin.error == ""


def test_unprepare_of_an_unknown_claim_succeeds(node: preparing.Preparer) -> None:
    ref = claims.ClaimRef("ns", "ghost", claims.ClaimUID("ghost"))
    assert node.unprepare([ref]) == {"ghost": ""}
    assert node.unprepare([ref]) == {"ghost": ""}


def test_a_failure_mid_prepare_is_rolled_back(
    node: preparing.Preparer, gpus: fake.FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise OSError("disk full")

    monkeypatch.setattr(writing, "write_claim_spec", broken)
    out = node.prepare([claim("u1", {"device": "gpu-0-mig-1g5gb-0"})])["u1"]
    assert "disk full" in out.error
    assert gpus.status(gpus.gpus()[0].uuid).mig_instances == ()
    assert node.prepared() == []


def test_reconcile_rolls_back_an_interrupted_prepare_and_removes_orphans(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    a100 = gpus.gpus()[0].uuid
    # As if the plugin died after creating the MIG instance, before recording it.
    gpus.set_mig_mode(a100, enabled=True)
    gpus.create_mig_instance(a100, profile_id=19, placement=hardware.Placement(6, 1))
    started = model.PreparedClaim(
        uid=model.ClaimUID("u1"),
        namespace="ns",
        name="claim-u1",
        state=model.PrepareState.STARTED,
        devices=(
            model.PreparedDevice(
                request_names=("r",),
                pool=NODE,
                device="gpu-0-mig-1g5gb-6",
                share_id=None,
                cdi_ids=(),
                gpu_uuid=a100,
                isolation=model.Isolation(mig=model.MigOrigin.DYNAMIC),
            ),
        ),
    )
    store.save(
        tmp_path / "plugin" / "checkpoint.json",
        model.Checkpoint(boot_id="boot-1").with_claim(started),
    )
    writing.write_claim_spec(
        tmp_path / "cdi", "orphan", [spec.Device("orphan-gpu-1", spec.ContainerEdits(env=("A=1",)))]
    )
    node.reconcile()
    assert gpus.status(a100).mig_instances == ()
    assert node.prepared() == []
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()


def test_device_counts_follow_prepare_and_unprepare(node: preparing.Preparer) -> None:
    share = {"device": "gpu-2-shared", "shareID": "s-1", "consumedCapacity": {"memory": "1Gi"}}
    node.prepare(
        [
            claim("u1", {"device": "gpu-1"}),
            claim("u2", {"device": "gpu-0-mig-1g5gb-6"}),
            claim("u3", share),
        ]
    )
    assert node.device_counts() == {"gpu": 1, "mig": 1, "shared": 1}
    node.unprepare([claims.ClaimRef("ns", "claim-u2", claims.ClaimUID("u2"))])
    assert node.device_counts() == {"gpu": 1, "mig": 0, "shared": 1}


@pytest.mark.parametrize("first", ["user", "admin"])
def test_a_shared_mig_instance_goes_when_the_last_claim_holding_it_goes(
    node: preparing.Preparer, gpus: fake.FakeBackend, first: str
) -> None:
    user = claim("user", {"device": "gpu-0-mig-2g10gb-4"})
    admin = claim("admin", {"device": "gpu-0-mig-2g10gb-4", "adminAccess": True})
    for item in [user, admin] if first == "user" else [admin, user]:
        assert node.prepare([item])[item.ref.uid].error == ""
    a100 = gpus.gpus()[0].uuid
    assert len(gpus.status(a100).mig_instances) == 1
    node.unprepare([user.ref if first == "user" else admin.ref])
    assert len(gpus.status(a100).mig_instances) == 1
    node.unprepare([admin.ref if first == "user" else user.ref])
    assert gpus.status(a100).mig_instances == ()


def test_start_up_destroys_our_orphaned_mig_instances_but_never_an_admins(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    a100 = gpus.gpus()[0].uuid
    gpus.set_mig_mode(a100, enabled=True)
    admin = gpus.create_mig_instance(a100, profile_id=19, placement=hardware.Placement(0, 1))
    assert node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])["u1"].error == ""
    assert node.prepare([claim("u2", {"device": "gpu-0-mig-1g5gb-3"})])["u2"].error == ""
    kept = next(
        i
        for i in gpus.status(a100).mig_instances
        if i.profile_name == "1g.5gb" and i.placement.start == 3
    )
    # The checkpoint is lost (corrupt, set aside): u1's instance is now an orphan of ours.
    disk = on_disk(node)
    disk.save(disk.load().without_claim(model.ClaimUID("u1")))
    _preparer(gpus, tmp_path, node.config.checkpoint_layout).reconcile()
    assert set(gpus.status(a100).mig_instances) == {admin, kept}


def _mps_log(tmp_path: pathlib.Path, daemon: str) -> str:
    return (tmp_path / "plugin" / "mps" / daemon / "log" / "control.log").read_text()


def test_mps_on_a_whole_gpu_gets_its_own_daemon_with_verified_settings(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    mps_config = copy.deepcopy(MPS)
    mps_config["opaque"]["parameters"]["sharing"]["mpsConfig"] = {
        "defaultActiveThreadPercentage": 40,
        "defaultPinnedDeviceMemoryLimit": "2Gi",
    }
    l4 = gpus.gpus()[2].uuid
    out = node.prepare([claim("abcdef12-1", {"device": "gpu-2"}, config=[mps_config])])
    assert out["abcdef12-1"].error == ""
    daemon = "claim-abcdef12-gpu-2"
    log = _mps_log(tmp_path, daemon)
    assert f"devices={l4}" in log
    assert "set_default_active_thread_percentage 40" in log
    assert f"set_default_device_pinned_mem_limit {l4} 2048M" in log
    assert gpus.status(l4).compute_mode is hardware.ComputeMode.EXCLUSIVE_PROCESS
    env = spec_env(tmp_path, "abcdef12-1")
    assert env["CUDA_MPS_PIPE_DIRECTORY"] == f"/var/run/gpu-dra/mps/{daemon}"
    node.unprepare([claims.ClaimRef("ns", "c", claims.ClaimUID("abcdef12-1"))])
    assert not (tmp_path / "plugin" / "mps" / daemon).exists()
    assert gpus.status(l4).compute_mode is hardware.ComputeMode.DEFAULT


def test_shares_of_a_gpu_share_one_daemon_until_the_last_goes(
    node: preparing.Preparer, gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    share = {"device": "gpu-2-shared", "consumedCapacity": {"memory": "1Gi", "cores": "30"}}
    node.prepare([claim("u1", {**share, "shareID": "s1"}), claim("u2", {**share, "shareID": "s2"})])
    assert len(mpscontrol.running_daemons()) >= 1
    assert _mps_log(tmp_path, "gpu-2").count("started") == 1
    env = spec_env(tmp_path, "u1")
    assert env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "30"
    assert env["CUDA_MPS_PIPE_DIRECTORY"] == "/var/run/gpu-dra/mps/gpu-2"
    # A restarted plugin adopts the running daemon instead of starting a second one.
    _preparer(gpus, tmp_path).prepare([claim("u3", {**share, "shareID": "s3"})])
    assert _mps_log(tmp_path, "gpu-2").count("started") == 1
    for uid in ("u1", "u2"):
        node.unprepare([claims.ClaimRef("ns", "c", claims.ClaimUID(uid))])
    assert (tmp_path / "plugin" / "mps" / "gpu-2").exists()
    node.unprepare([claims.ClaimRef("ns", "c", claims.ClaimUID("u3"))])
    assert not (tmp_path / "plugin" / "mps" / "gpu-2").exists()
    assert gpus.status(gpus.gpus()[2].uuid).compute_mode is hardware.ComputeMode.DEFAULT


def test_a_daemon_that_fails_to_start_fails_the_claim_and_leaves_nothing(
    node: preparing.Preparer,
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_MPS_FAIL_START", "1")
    share = {"device": "gpu-2-shared", "shareID": "s1", "consumedCapacity": {"memory": "1Gi"}}
    error = node.prepare([claim("u1", share)])["u1"].error
    assert "MPS daemon gpu-2 did not start" in error
    assert "injected failure" in error
    assert not (tmp_path / "plugin" / "mps" / "gpu-2").exists()
    assert node.prepared() == []
    assert gpus.status(gpus.gpus()[2].uuid).compute_mode is hardware.ComputeMode.DEFAULT
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()


class _PodNeverStarts:
    """A runner whose daemons never come up (a daemon pod stuck pulling its image)."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def start(self, daemon_id: str, control: Sequence[str], env: Mapping[str, str]) -> None:
        pass

    def stop(self, daemon_id: str) -> None:
        self.stopped.append(daemon_id)

    def kept(self) -> set[str]:
        return set()


def test_a_daemon_that_never_answers_fails_the_claim_after_the_ready_timeout(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    runner = _PodNeverStarts()
    node = preparing.Preparer(
        gpus, node_config(tmp_path, mps_ready_timeout=0.3), boot_id="boot-1", mps_runner=runner
    )
    share = {"device": "gpu-2-shared", "shareID": "s1", "consumedCapacity": {"memory": "1Gi"}}
    error = node.prepare([claim("u1", share)])["u1"].error
    assert "MPS daemon gpu-2 did not start: no answer on its pipe within 0.3 s" in error
    assert runner.stopped == ["gpu-2"]
    assert not (tmp_path / "plugin" / "mps" / "gpu-2").exists()
    assert node.prepared() == []


def test_shares_inject_the_preload_library_when_configured(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    config = node_config(
        tmp_path,
        publish=settings.PublishSettings(
            shared=settings.SharedSettings(strategy=settings.SharingStrategy.TIMESLICING)
        ),
        preload_library="/usr/lib/gpu-dra/libgpuquota.so",
    )
    node = preparing.Preparer(gpus, config, boot_id="boot-1")
    share = {"device": "gpu-2-shared", "shareID": "s1", "consumedCapacity": {"memory": "1Gi"}}
    assert node.prepare([claim("u1", share), claim("u2", {"device": "gpu-0"})])["u1"].error == ""
    spec_of = {
        uid: json.loads((tmp_path / "cdi" / f"k8s.gpu.dra.dev-claim_{uid}.json").read_text())
        for uid in ("u1", "u2")
    }
    mounts = {m["containerPath"]: m for m in spec_of["u1"]["containerEdits"]["mounts"]}
    assert mounts["/etc/ld.so.preload"]["hostPath"] == str(tmp_path / "plugin" / "ld.so.preload")
    assert "ro" in mounts["/etc/ld.so.preload"]["options"]
    assert "/usr/lib/gpu-dra/libgpuquota.so" in mounts
    assert (
        tmp_path / "plugin" / "ld.so.preload"
    ).read_text() == "/usr/lib/gpu-dra/libgpuquota.so\n"
    assert "containerEdits" not in spec_of["u2"]  # a whole GPU gets no quota library


def test_mps_clients_get_the_daemons_shm(node: preparing.Preparer, tmp_path: pathlib.Path) -> None:
    share = {"device": "gpu-2-shared", "shareID": "s1", "consumedCapacity": {"memory": "1Gi"}}
    assert node.prepare([claim("u1", share)])["u1"].error == ""
    spec = json.loads((tmp_path / "cdi" / "k8s.gpu.dra.dev-claim_u1.json").read_text())
    mounts = {
        m["containerPath"]: m["hostPath"] for m in spec["devices"][0]["containerEdits"]["mounts"]
    }
    assert mounts["/dev/shm"] == str(tmp_path / "plugin" / "mps" / "gpu-2" / "shm")
    assert mounts["/var/run/gpu-dra/mps/gpu-2"] == str(
        tmp_path / "plugin" / "mps" / "gpu-2" / "pipe"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_real_gpu_daemons_get_a_tmpfs_shm_that_goes_with_them(tmp_path: pathlib.Path) -> None:
    root = pathlib.Path(tempfile.mkdtemp(prefix="gdra-shm-", dir="/tmp"))
    try:
        daemons = mps.Daemons(
            root,
            control=(sys.executable, "-m", "dra_driver.backends.fake.mpscontrol"),
            runner=mps.LocalRunner(),
            tmpfs_shm=True,
        )
        daemons.ensure(mps.DaemonSpec(id="gpu-0", devices=("GPU-abc",)))
        shm = daemons.shm_dir("gpu-0")
        assert os.path.ismount(shm)
        mounts = pathlib.Path("/proc/mounts").read_text().splitlines()
        assert "tmpfs" in next(line for line in mounts if f" {shm} " in line)
        daemons.stop("gpu-0")
        assert not shm.exists()
        assert f" {shm} " not in pathlib.Path("/proc/mounts").read_text()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(
    ("failing", "written"),
    [(1, "PrepareStarted"), (2, "PrepareCompleted")],
    ids=["started", "completed"],
)
def test_a_checkpoint_that_cannot_be_written_fails_the_claim_and_leaves_nothing(
    node: preparing.Preparer,
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    failing: int,
    written: str,
) -> None:
    real, calls = node._save, []

    def save(state: model.Checkpoint) -> None:
        calls.append(state)
        if len(calls) == failing:
            raise checkpoint_errors.CheckpointIOError(f"cannot write {written}: disk full")
        real(state)

    monkeypatch.setattr(node, "_save", save)

    outcome = node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])["u1"]

    assert (
        outcome.error
        == f"preparing claim ns/claim-u1 (u1) failed: cannot write {written}: disk full"
    )
    assert gpus.status(gpus.gpus()[0].uuid).mig_instances == ()
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()
    monkeypatch.undo()
    assert node.prepared() == []


def test_every_event_of_a_prepare_and_an_unprepare_names_the_claim(
    node: preparing.Preparer,
) -> None:
    merge = structlog.contextvars.merge_contextvars
    with structlog.testing.capture_logs(processors=[merge]) as logs:
        node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"})])
        node.unprepare([claims.ClaimRef("ns", "claim-u1", claims.ClaimUID("u1"))])

    events = [entry["event"] for entry in logs]
    for expected in ("mig.created", "cdi.spec_written", "claim.prepared", "claim.unprepared"):
        assert expected in events
    # The checkpoint is read and written once per batch: its events are the batch's.
    per_claim = [entry for entry in logs if not entry["event"].startswith("checkpoint.")]
    assert {entry.get("claim") for entry in per_claim} == {"ns/claim-u1 (u1)"}  # one spelling
    assert not [entry for entry in logs if "claim_uid" in entry]


def _recording_saves(
    node: preparing.Preparer, monkeypatch: pytest.MonkeyPatch
) -> list[model.Checkpoint]:
    saves: list[model.Checkpoint] = []
    real = node._save

    def save(state: model.Checkpoint) -> None:
        saves.append(state)
        real(state)

    monkeypatch.setattr(node, "_save", save)
    return saves


def _states(checkpoint: model.Checkpoint) -> dict[str, str]:
    return {uid: claim.state.value for uid, claim in checkpoint.claims.items()}


def test_a_batch_writes_the_checkpoint_once_per_phase(
    node: preparing.Preparer, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = _recording_saves(node, monkeypatch)
    share = {"device": "gpu-2-shared", "consumedCapacity": {"memory": "1Gi"}}
    batch = [
        claim("u1", {"device": "gpu-0"}),
        claim("u2", {"device": "gpu-1-mig-1g5gb-6"}),
        claim("u3", {**share, "shareID": "s3"}),
        claim("u4", {**share, "shareID": "s4"}),
    ]
    out = node.prepare(batch)
    assert {uid: outcome.error for uid, outcome in out.items()} == dict.fromkeys(out, "")
    assert [_states(state) for state in saves] == [
        dict.fromkeys(["u1", "u2", "u3", "u4"], "PrepareStarted"),
        dict.fromkeys(["u1", "u2", "u3", "u4"], "PrepareCompleted"),
    ]
    assert node.prepare(batch) == {uid: dataclasses.replace(o, new=False) for uid, o in out.items()}
    assert len(saves) == 2  # nothing new: nothing written
    refs = [claims.ClaimRef("ns", f"claim-{uid}", claims.ClaimUID(uid)) for uid in out]
    assert node.unprepare(refs) == dict.fromkeys(out, "")
    assert [_states(state) for state in saves[2:]] == [{}]


def _gpu_config(**fields: Any) -> list[dict[str, Any]]:
    parameters = {"apiVersion": "gpu.dra.dev/v1alpha1", "kind": "GpuConfig", **fields}
    return [
        {
            "source": "FromClaim",
            "requests": [],
            "opaque": {"driver": DRIVER, "parameters": parameters},
        }
    ]


def test_whole_gpus_are_recorded_once_they_are_prepared(
    node: preparing.Preparer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their only side effects are files that start-up reconciliation removes when no entry
    owns them: no ``PrepareStarted`` record is written first. Time-slicing changes the GPU: it
    is recorded first, to be undone after a crash."""
    saves = _recording_saves(node, monkeypatch)
    out = node.prepare(
        [claim("u1", {"device": "gpu-0"}), claim("u2", {"device": "gpu-1"}, config=_gpu_config())]
    )
    assert [_states(state) for state in saves] == [dict.fromkeys(out, "PrepareCompleted")]
    timesliced = _gpu_config(sharing={"strategy": "TimeSlicing"})
    assert node.prepare([claim("u3", {"device": "gpu-2"}, config=timesliced)])["u3"].error == ""
    assert [_states(state)["u3"] for state in saves[1:]] == ["PrepareStarted", "PrepareCompleted"]


def test_a_claim_failing_mid_batch_is_undone_alone(
    node: preparing.Preparer,
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second share's CDI spec cannot be written: its claim is undone, and the daemon that
    the first share (prepared earlier in the same batch) uses keeps running."""
    real = writing.write_claim_spec

    def write(cdi_dir: pathlib.Path, uid: str, *args: Any, **kwargs: Any) -> Any:
        if uid == "u2":
            raise OSError(28, os.strerror(28))
        return real(cdi_dir, uid, *args, **kwargs)

    monkeypatch.setattr(writing, "write_claim_spec", write)
    share = {"device": "gpu-2-shared", "consumedCapacity": {"memory": "1Gi", "cores": "30"}}
    out = node.prepare(
        [
            claim("u1", {**share, "shareID": "s1"}),
            claim("u2", {**share, "shareID": "s2"}),
            claim("u3", {"device": "gpu-0"}),
        ]
    )
    assert (
        out["u2"].error
        == "preparing claim ns/claim-u2 (u2) failed: [Errno 28] No space left on device"
    )
    assert out["u1"].error == out["u3"].error == ""
    assert _states(on_disk(node).load()) == {"u1": "PrepareCompleted", "u3": "PrepareCompleted"}
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == {"u1", "u3"}
    assert not (tmp_path / "plugin" / "claims" / "u2").exists()
    assert (tmp_path / "plugin" / "mps" / "gpu-2").exists()  # u1 still uses it
    assert gpus.status(gpus.gpus()[2].uuid).compute_mode is hardware.ComputeMode.EXCLUSIVE_PROCESS


def test_a_batch_whose_outcomes_cannot_be_written_is_undone_whole(
    node: preparing.Preparer,
    gpus: fake.FakeBackend,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real, calls = node._save, []

    def save(state: model.Checkpoint) -> None:
        calls.append(state)
        if len(calls) == 2:
            raise checkpoint_errors.CheckpointIOError("cannot write PrepareCompleted: disk full")
        real(state)

    monkeypatch.setattr(node, "_save", save)
    share = {"device": "gpu-2-shared", "shareID": "s1", "consumedCapacity": {"memory": "1Gi"}}
    out = node.prepare([claim("u1", {"device": "gpu-0-mig-3g20gb-4"}), claim("u2", share)])
    for uid in ("u1", "u2"):
        assert out[uid].error == (
            f"preparing claim ns/claim-{uid} ({uid}) failed: "
            "cannot write PrepareCompleted: disk full"
        )
    assert gpus.status(gpus.gpus()[0].uuid).mig_instances == ()
    assert not (tmp_path / "plugin" / "mps" / "gpu-2").exists()
    assert writing.claim_uids_with_specs(tmp_path / "cdi") == set()
    monkeypatch.undo()
    assert node.prepared() == []
