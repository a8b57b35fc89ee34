"""A CDI spec that cannot be written fails the claim and rolls prepare back.

Covers: when the CDI dir cannot take the claim's spec (here: it is a file), the claim fails with
the CDI error in its message (not as an "internal error"), and nothing of it stays: the MIG
instance created for it is destroyed and it has no checkpoint entry (the CDI writer's own errors
roll back like backend and I/O errors do).
"""

from __future__ import annotations

from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, mig


def test_a_failed_cdi_write_fails_the_claim_and_leaves_nothing(
    stubs: pluginserver.Stubs, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    assert not plugin.layout.cdi_dir.exists()  # created by the first spec write
    plugin.layout.cdi_dir.write_text("a file where the CDI dir should be")
    obj = claim("u1", mig(0, "3g.20gb", 4))
    book.add(obj)

    error = stubs.v1.prepare(claimbook.ref(obj)).claims["u1"].error

    assert error.startswith("preparing claim ns/claim-u1 (u1) failed: cannot write the CDI spec")
    assert plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances == ()
    assert plugin.layout.checkpointed() == {}
