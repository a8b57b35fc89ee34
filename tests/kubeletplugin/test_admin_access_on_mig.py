"""Admin access to a dynamic MIG device that a user's claim holds.

Covers: an ``adminAccess`` claim may share a MIG device with the user's claim (the reference's
exception to "one claim per device"), and unpreparing the admin claim must leave the user's MIG
instance in place, whichever of the two was prepared first (a dynamic MIG instance is destroyed
only when no claim holds its device any more).
"""

from __future__ import annotations

import pytest

from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, mig


@pytest.mark.parametrize("first", ["user", "admin"])
def test_unpreparing_the_admin_claim_keeps_the_users_mig_instance(
    dra: pluginserver.DraClient,
    book: claimbook.ClaimBook,
    plugin: pluginserver.PluginServer,
    first: str,
) -> None:
    user = claim("u-user", mig(0, "3g.20gb", 4))
    admin = claim("u-admin", {**mig(0, "3g.20gb", 4), "adminAccess": True})
    order = [user, admin] if first == "user" else [admin, user]
    for obj in order:
        book.add(obj)
        uid = obj["metadata"]["uid"]
        assert dra.prepare(claimbook.ref(obj)).claims[uid].error == ""
    a100 = plugin.backend.gpus()[0].uuid
    (instance,) = plugin.backend.status(a100).mig_instances

    assert dra.unprepare(claimbook.ref(admin)).claims["u-admin"].error == ""

    assert plugin.backend.status(a100).mig_instances == (instance,)
