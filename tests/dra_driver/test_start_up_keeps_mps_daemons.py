"""A restarted plugin (`Preparer.reconcile` at start-up) and the MPS daemons it finds, fake GPUs.

Covers: the daemon of a prepared share keeps running through the restart (the same process, its
settings never re-applied, never quit), and the restarted plugin's unprepare of the last share
stops it; a daemon no checkpoint entry names (a claim released while no plugin ran) is stopped
and its directory removed; so is one left by a prepare that died after starting it (the rolled
back ``PrepareStarted`` entry names no daemon yet).
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from dra_driver import claims, preparing
from dra_driver.backends.fake import backend as fake
from dra_driver.backends.fake import mpscontrol
from dra_driver.checkpoint import model, store
from dra_driver.isolation import mps
from tests.dra_driver.test_preparing import DRIVER, NODE, node_config

SHARE = {"device": "gpu-0-shared", "consumedCapacity": {"memory": "1Gi", "cores": "30"}}


@pytest.fixture
def gpus(tmp_path: pathlib.Path) -> fake.FakeBackend:
    return fake.FakeBackend.from_spec("1xL4", node_name=NODE, state_dir=tmp_path / "state")


def _plugin(gpus: fake.FakeBackend, tmp_path: pathlib.Path) -> preparing.Preparer:
    """A plugin process's prepare flow on the node's dirs, reconciled as at its start."""
    preparer = preparing.Preparer(gpus, node_config(tmp_path), boot_id="boot-1")
    preparer.reconcile()
    return preparer


def _share(uid: str) -> claims.AllocatedClaim:
    result: dict[str, Any] = {"driver": DRIVER, "pool": NODE, "request": "r", **SHARE}
    obj = {
        "metadata": {"namespace": "ns", "name": f"claim-{uid}", "uid": uid},
        "status": {
            "allocation": {
                "devices": {"results": [{**result, "shareID": f"share-{uid}"}], "config": []}
            }
        },
    }
    ref = claims.ClaimRef("ns", f"claim-{uid}", claims.ClaimUID(uid))
    return claims.allocated(obj, ref=ref, driver=DRIVER)


def _ref(uid: str) -> claims.ClaimRef:
    return claims.ClaimRef("ns", f"claim-{uid}", claims.ClaimUID(uid))


def _daemon_pids(root: pathlib.Path) -> set[int]:
    return mpscontrol.running_daemons(under=root)


def _commands(root: pathlib.Path) -> list[str]:
    lines = (root / "log" / "control.log").read_text().splitlines()
    return [line.split(" ", 1)[1] for line in lines]


def test_a_restart_keeps_the_daemon_of_a_prepared_share_and_its_unprepare_stops_it(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    old = _plugin(gpus, tmp_path)
    assert old.prepare([_share("u1")])["u1"].error == ""
    daemon = tmp_path / "plugin" / "mps" / "gpu-0"
    pids = _daemon_pids(daemon)
    assert len(pids) == 1
    before = _commands(daemon)
    old.mps.close()  # the old process ends; its daemon does not

    new = _plugin(gpus, tmp_path)
    assert _daemon_pids(daemon) == pids
    since = _commands(daemon)[len(before) :]
    assert all(command.startswith("get_") for command in since), since

    assert new.unprepare([_ref("u1")]) == {"u1": ""}
    assert _daemon_pids(tmp_path / "plugin" / "mps") == set()
    assert not daemon.exists()


def test_a_daemon_no_claim_names_is_stopped_at_start(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    old = _plugin(gpus, tmp_path)
    assert old.prepare([_share("u1")])["u1"].error == ""
    old.mps.ensure(mps.DaemonSpec(id="claim-gone", devices=(gpus.gpus()[0].uuid,)))
    kept = _daemon_pids(tmp_path / "plugin" / "mps" / "gpu-0")
    old.mps.close()

    new = _plugin(gpus, tmp_path)
    assert _daemon_pids(tmp_path / "plugin" / "mps") == kept
    assert new.mps.known() == {"gpu-0"}
    new.unprepare([_ref("u1")])


def test_a_daemon_left_by_a_prepare_that_died_is_stopped_at_start(
    gpus: fake.FakeBackend, tmp_path: pathlib.Path
) -> None:
    old = _plugin(gpus, tmp_path)
    # As far as a prepare got when the process died after starting the daemon: the checkpoint
    # has the claim PrepareStarted (its planned devices name no daemon yet), the daemon runs.
    planned = model.PreparedClaim(
        uid=model.ClaimUID("u1"),
        namespace="ns",
        name="claim-u1",
        state=model.PrepareState.STARTED,
        devices=(),
    )
    store.save(
        tmp_path / "plugin" / "checkpoint.json",
        model.Checkpoint(boot_id="boot-1").with_claim(planned),
    )
    old.mps.ensure(mps.DaemonSpec(id="gpu-0", devices=(gpus.gpus()[0].uuid,)))
    old.mps.close()

    new = _plugin(gpus, tmp_path)
    assert _daemon_pids(tmp_path / "plugin" / "mps") == set()
    assert new.mps.known() == set()
    assert new.prepared() == []
