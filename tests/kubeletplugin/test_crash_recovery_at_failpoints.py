"""A plugin killed (SIGKILL) at every step of prepare converges once it is started again.

For each step of `failpoints.PREPARE_STEPS`, the plugin runs as a process with
``GPU_DRA_FAILPOINT=<step>`` and is asked to prepare a claim with a dynamic MIG device and a
share of a shared device. Covers: the call fails (the process died without answering) and the
node is left exactly as far as that step got (checkpoint state, MIG instance, CDI spec, quota
dir); the dead process's socket file stays behind and does not stop a new process of the same
pod from serving; the restarted plugin (no failpoint, same dirs) prepares the same claim
completely, with exactly one MIG instance on the GPU, and unprepares it; in the end nothing is
left: no CDI spec or temporary file in the CDI dir, no checkpoint entry, no quota dir, no MIG
instance, no socket. A whole GPU, whose prepare is recorded only once complete: killed at any
step, it leaves at most a CDI spec that no entry owns, which the restarted plugin removes before
serving.
"""

from __future__ import annotations

import dataclasses
import pathlib
import signal

import grpc
import pytest

from dra_driver import claims, failpoints, hardware
from dra_driver.checkpoint import model
from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, gpu, mig, shared

POD_UID = "0dead0ff-0000-4000-8000-00000000000b"
CLAIM_UID = "c1a1e000-0000-4000-8000-00000000000c"
SHARE_ID = "5ca1ab1e-0000-4000-8000-000000000001"


@dataclasses.dataclass(frozen=True)
class LeftBehind:
    """How far prepare got when the process died."""

    state: model.PrepareState
    mig_instance: bool
    cdi_spec: bool


STARTED, COMPLETED = model.PrepareState.STARTED, model.PrepareState.COMPLETED
AT_STEP = {
    "prepare.started-recorded": LeftBehind(STARTED, mig_instance=False, cdi_spec=False),
    "prepare.isolated": LeftBehind(STARTED, mig_instance=True, cdi_spec=False),
    "prepare.cdi-written": LeftBehind(STARTED, mig_instance=True, cdi_spec=True),
    "prepare.completed-recorded": LeftBehind(COMPLETED, mig_instance=True, cdi_spec=True),
}


def test_every_step_is_covered() -> None:
    assert tuple(AT_STEP) == failpoints.PREPARE_STEPS


def sockets(layout: pluginserver.Layout) -> list[pathlib.Path]:
    return [
        path
        for directory in (layout.plugin_dir, layout.registry_dir)
        if directory.is_dir()
        for path in directory.iterdir()
        if path.is_socket()
    ]


def mig_instances(layout: pluginserver.Layout) -> tuple[hardware.MigInstance, ...]:
    gpus = layout.open_gpus()
    return gpus.status(gpus.gpus()[0].uuid).mig_instances


def _killed_preparing(
    layout: pluginserver.Layout, claims_dir: pathlib.Path, ref: claims.ClaimRef, step: str
) -> grpc.RpcError:
    """Ask a plugin process that dies at `step` to prepare `ref`; the error the call got."""
    crashing = pluginserver.PluginProcess(
        layout, claims_dir=claims_dir, pod_uid=POD_UID, failpoint=step
    )
    try:
        crashing.wait_ready()
        with crashing.stubs() as stubs, pytest.raises(grpc.RpcError) as raised:
            stubs.v1.prepare(ref, timeout=10)
        assert crashing.wait(timeout=10) == -signal.SIGKILL, crashing.log()
    finally:
        crashing.close()
    return raised.value


@pytest.mark.parametrize("step", failpoints.PREPARE_STEPS)
def test_a_plugin_killed_mid_prepare_converges_after_a_restart(
    short_dir: pathlib.Path, step: str
) -> None:
    layout, claims_dir = pluginserver.Layout(short_dir / "node"), short_dir / "claims"
    obj = claim(
        CLAIM_UID,
        mig(0, "3g.20gb", 4, request="mig"),
        shared(1, share_id=SHARE_ID, memory="4Gi", cores="30", request="share"),
    )
    claimbook.ClaimBook(claims_dir).add(obj)
    ref = claimbook.ref(obj)

    # 1. The plugin dies at `step`, without answering.
    raised = _killed_preparing(layout, claims_dir, ref, step)
    code, details = pluginserver.status_of(raised)
    assert code is grpc.StatusCode.UNAVAILABLE, details
    left = AT_STEP[step]
    assert layout.checkpointed() == {CLAIM_UID: left.state}
    assert len(mig_instances(layout)) == int(left.mig_instance)
    assert layout.cdi_spec(CLAIM_UID).exists() is left.cdi_spec
    assert layout.quota_dir(CLAIM_UID).exists() is left.cdi_spec
    assert layout.dra_socket(POD_UID) in sockets(layout)  # the dead process's

    # 2. The pod's container is restarted, without the failpoint, on the same dirs.
    restarted = pluginserver.PluginProcess(layout, claims_dir=claims_dir, pod_uid=POD_UID)
    try:
        restarted.wait_ready()
        with restarted.stubs() as stubs:
            answer = stubs.v1.prepare(ref, timeout=10).claims[CLAIM_UID]
            assert answer.error == "", restarted.log()
            assert [(d.device_name, list(d.request_names), d.share_id) for d in answer.devices] == [
                ("gpu-0-mig-3g20gb-4", ["mig"], ""),
                ("gpu-1-shared", ["share"], SHARE_ID),
            ]
            assert [list(d.cdi_device_ids) for d in answer.devices] == [
                [f"k8s.gpu.dra.dev/claim={CLAIM_UID}-gpu-0-mig-3g20gb-4"],
                [f"k8s.gpu.dra.dev/claim={CLAIM_UID}-gpu-1-shared-5ca1ab1e"],
            ]
            (instance,) = mig_instances(layout)
            assert instance.placement == hardware.Placement(4, 4)
            assert layout.cdi_env(CLAIM_UID)["GPU_DRA_GPU_0_MIG_3G20GB_4_UUID"] == instance.uuid
            assert (layout.quota_dir(CLAIM_UID) / "quota.conf").is_file()
            assert layout.checkpointed() == {CLAIM_UID: COMPLETED}

            assert stubs.v1.unprepare(ref, timeout=10).claims[CLAIM_UID].error == ""
        assert restarted.terminate() == 0, restarted.log()
    finally:
        restarted.close()

    # 3. Converged: nothing of the claim, nor of either process, is left.
    assert sorted(layout.cdi_dir.iterdir()) == []  # no spec, no temporary file
    assert layout.checkpointed() == {}
    assert not layout.quota_dir(CLAIM_UID).exists()
    assert mig_instances(layout) == ()
    assert sockets(layout) == []


WHOLE_GPU_AT_STEP = {  # nothing is recorded before its CDI spec exists: it has nothing to undo
    "prepare.started-recorded": (None, False),
    "prepare.isolated": (None, False),
    "prepare.cdi-written": (None, True),
    "prepare.completed-recorded": (COMPLETED, True),
}


@pytest.mark.parametrize("step", failpoints.PREPARE_STEPS)
def test_a_whole_gpu_killed_mid_prepare_leaves_only_what_start_up_removes(
    short_dir: pathlib.Path, step: str
) -> None:
    layout, claims_dir = pluginserver.Layout(short_dir / "node"), short_dir / "claims"
    obj = claim(CLAIM_UID, gpu(1, request="gpu"))
    claimbook.ClaimBook(claims_dir).add(obj)
    ref = claimbook.ref(obj)
    _killed_preparing(layout, claims_dir, ref, step)
    state, spec = WHOLE_GPU_AT_STEP[step]
    assert layout.checkpointed() == ({} if state is None else {CLAIM_UID: state})
    assert layout.cdi_spec(CLAIM_UID).exists() is spec

    restarted = pluginserver.PluginProcess(layout, claims_dir=claims_dir, pod_uid=POD_UID)
    try:
        restarted.wait_ready()
        # Start-up removed the spec that no entry owns; a recorded claim keeps its own.
        assert layout.cdi_spec(CLAIM_UID).exists() is (state is not None)
        with restarted.stubs() as stubs:
            answer = stubs.v1.prepare(ref, timeout=10).claims[CLAIM_UID]
            assert answer.error == "", restarted.log()
            assert layout.checkpointed() == {CLAIM_UID: COMPLETED}
            assert stubs.v1.unprepare(ref, timeout=10).claims[CLAIM_UID].error == ""
        assert restarted.terminate() == 0, restarted.log()
    finally:
        restarted.close()
    assert sorted(layout.cdi_dir.iterdir()) == []
    assert layout.checkpointed() == {}
