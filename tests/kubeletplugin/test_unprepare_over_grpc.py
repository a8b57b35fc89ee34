"""NodeUnprepareResources over gRPC, in DRA v1 and v1beta1.

Covers: unprepare removes the claim's CDI spec, its MIG instance, its quota dir and its
checkpoint entry, and works from local state only (the claim is already gone from the API
server); the freed device can then be prepared for another claim; an unknown claim is success;
every claim of the request gets an entry; unprepare can be repeated.
"""

from __future__ import annotations

from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, gpu, mig, shared


def test_unprepare_removes_everything_the_claim_held(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    obj = claim("u1", mig(0, "3g.20gb", 4), shared(1, share_id="aaaaaaaa-1"))
    book.add(obj)
    assert dra.prepare(claimbook.ref(obj)).claims["u1"].error == ""
    layout, a100 = plugin.layout, plugin.backend.gpus()[0].uuid
    assert layout.cdi_spec("u1").exists()
    assert layout.quota_dir("u1").exists()
    assert len(plugin.backend.status(a100).mig_instances) == 1
    book.remove("ns", "claim-u1")  # the pod and its claim are gone before the kubelet unprepares

    answer = dra.unprepare(claimbook.ref(obj))

    assert {uid: entry.error for uid, entry in answer.claims.items()} == {"u1": ""}
    assert not layout.cdi_spec("u1").exists()
    assert not layout.quota_dir("u1").exists()
    assert plugin.backend.status(a100).mig_instances == ()
    assert layout.checkpointed() == {}


def test_a_freed_device_can_be_prepared_for_another_claim(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook
) -> None:
    first, second = claim("u1", gpu(1)), claim("u2", gpu(1))
    book.add(first)
    book.add(second)
    assert dra.prepare(claimbook.ref(first)).claims["u1"].error == ""
    assert "already prepared for claim ns/claim-u1 (u1)" in (
        dra.prepare(claimbook.ref(second)).claims["u2"].error
    )
    assert dra.unprepare(claimbook.ref(first)).claims["u1"].error == ""
    assert dra.prepare(claimbook.ref(second)).claims["u2"].error == ""


def test_an_unknown_claim_is_unprepared_already(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    known = claim("known", mig(0, "1g.5gb", 6))
    book.add(known)
    assert dra.prepare(claimbook.ref(known)).claims["known"].error == ""
    ghost = claimbook.ref(claim("ghost"))
    for _ in range(2):
        answer = dra.unprepare(ghost, claimbook.ref(known))
        assert {uid: entry.error for uid, entry in answer.claims.items()} == {
            "ghost": "",
            "known": "",
        }
    assert plugin.layout.checkpointed() == {}
    assert plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances == ()
