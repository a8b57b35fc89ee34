"""The periodic sweep (`sweeping.sweep`) over claims prepared through the DRA service.

Covers: a prepared claim whose ResourceClaim is gone, or exists again with a new UID, is
unprepared (CDI spec, MIG instance and checkpoint entry gone) and returned; one that still exists
is kept, and so is one whose existence cannot be told now (``None``: API server unreachable), and
every claim after it without asking; a claim whose prepare was interrupted (``PrepareStarted``)
is left to start-up reconciliation; a second sweep finds nothing more. As a duty (`sweeping.pass_`)
a sweep that was unsure raises a retryable error, so its loop backs off and sweeps again.
"""

from __future__ import annotations

import pytest

from controller import errors
from dra_driver import atomicfiles, claims
from dra_driver.checkpoint import model, store
from kubeletplugin import sweeping
from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, gpu, mig, shared


def record_interrupted(plugin: pluginserver.PluginServer, uid: str) -> None:
    """A checkpoint entry as a prepare that died right after ``PrepareStarted`` leaves it."""
    config = plugin.layout.node_config()
    entry = model.PreparedClaim(
        uid=model.ClaimUID(uid),
        namespace="ns",
        name=f"claim-{uid}",
        state=model.PrepareState.STARTED,
        devices=(),
    )
    lock = atomicfiles.NodeLock(config.lock_path)
    try:
        node = store.NodeCheckpoint(config.plugin_dir, boot_id=plugin.preparer.boot_id, lock=lock)
        with lock:
            node.save(node.load().with_claim(entry))
    finally:
        lock.close()


def test_the_sweep_unprepares_claims_that_are_gone_and_only_those(
    plugin: pluginserver.PluginServer, stubs: pluginserver.Stubs, book: claimbook.ClaimBook
) -> None:
    objs = [
        claim("u-kept", gpu(1)),
        claim("u-gone", mig(0, "3g.20gb", 4)),
        claim("u-replaced", mig(0, "3g.20gb", 0)),
        claim("u-unknown", shared(1, share_id="aaaaaaaa-1")),
    ]
    for obj in objs:
        book.add(obj)
    answer = stubs.v1.prepare(*[claimbook.ref(obj) for obj in objs])
    assert {entry.error for entry in answer.claims.values()} == {""}
    record_interrupted(plugin, "u-interrupted")
    book.remove("ns", "claim-u-gone")
    book.add(claim("u-replaced-2", gpu(1), name="claim-u-replaced"))

    def exists(ref: claims.ClaimRef) -> bool | None:
        return None if ref.uid == "u-unknown" else book.exists(ref)

    swept = sweeping.sweep(plugin.preparer, exists=exists)

    assert sorted(ref.uid for ref in swept.gone) == ["u-gone", "u-replaced"]
    assert [ref.uid for ref in swept.unsure] == ["u-unknown"]
    assert swept.failed == {}
    layout = plugin.layout
    assert layout.checkpointed() == {
        "u-kept": model.PrepareState.COMPLETED,
        "u-unknown": model.PrepareState.COMPLETED,
        "u-interrupted": model.PrepareState.STARTED,
    }
    assert not layout.cdi_spec("u-gone").exists()
    assert not layout.cdi_spec("u-replaced").exists()
    assert layout.cdi_spec("u-kept").exists()
    assert layout.cdi_spec("u-unknown").exists()
    assert plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances == ()
    again = sweeping.sweep(plugin.preparer, exists=exists)
    assert (again.gone, [ref.uid for ref in again.unsure]) == ([], ["u-unknown"])


def test_an_unreachable_server_is_asked_once_per_sweep_and_the_pass_is_retried(
    plugin: pluginserver.PluginServer, stubs: pluginserver.Stubs, book: claimbook.ClaimBook
) -> None:
    objs = [claim("u-1", gpu(0)), claim("u-2", gpu(1))]
    for obj in objs:
        book.add(obj)
    answer = stubs.v1.prepare(*[claimbook.ref(obj) for obj in objs])
    assert {entry.error for entry in answer.claims.values()} == {""}
    asked: list[str] = []

    def unreachable(ref: claims.ClaimRef) -> bool | None:
        asked.append(ref.uid)
        return None

    with pytest.raises(errors.RetryableError, match="could not tell whether 2 claim"):
        sweeping.pass_(plugin.preparer, exists=unreachable)
    assert len(asked) == 1
    assert set(plugin.layout.checkpointed()) == {"u-1", "u-2"}

    book.remove("ns", "claim-u-1")
    sweeping.pass_(plugin.preparer, exists=book.exists)  # all answered: no error
    assert set(plugin.layout.checkpointed()) == {"u-2"}
