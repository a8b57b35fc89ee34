"""A claim that cannot be prepared fails alone, with a precise message, in v1 and v1beta1.

Covers, each next to a good claim in the same batch (which is prepared): the claim is gone from
the API server; it was deleted and created again (another UID); it is not allocated; it has only
another driver's devices; it names a device this node does not have, or a MIG profile its GPU
does not have; a device of another pool; a bad opaque config (the message names the field path,
counting the configs of other drivers); a config asking for MPS. The failed claim leaves no CDI
spec, checkpoint entry, quota dir or MIG instance, and the call itself succeeds.
"""

from __future__ import annotations

import pytest

from dra_driver.checkpoint import model
from tests.kubeletplugin import claimbook, pluginserver
from tests.kubeletplugin.claimbook import claim, foreign, gpu, gpu_config, mig, opaque, result

BAD = claimbook.ref(claim("bad", name="claim-bad"))
PREFIX = "claim ns/claim-bad (bad)"

CASES = [
    pytest.param(None, f"{PREFIX} does not exist (any more)", id="missing"),
    pytest.param(
        claim("other", gpu(1), name="claim-bad"),
        "claim ns/claim-bad now has UID other, not bad: it was deleted and created again",
        id="uid-mismatch",
    ),
    pytest.param(claim("bad", allocated=False), f"{PREFIX} is not allocated", id="not-allocated"),
    pytest.param(
        claim("bad", foreign("nvidia0"), foreign("tpu-3", driver="tpu.example.com")),
        f"{PREFIX} has no devices allocated by driver gpu.dra.dev",
        id="other-drivers-only",
    ),
    pytest.param(
        claim("bad", result("gpu-7")), "device 'gpu-7': this node has no GPU 7", id="no-such-gpu"
    ),
    pytest.param(
        claim("bad", mig(1, "1g.5gb", 0)),
        "device 'gpu-1-mig-1g5gb-0': GPU 1 (NVIDIA L4) has no MIG profile '1g5gb'",
        id="no-such-mig-profile",
    ),
    pytest.param(
        claim("bad", result("gpu-0", pool="node-b")),
        f"device gpu-0 of {PREFIX} is from pool 'node-b'; this node publishes pool 'node-a'",
        id="other-pool",
    ),
    pytest.param(
        claim(
            "bad",
            gpu(0),
            config=[
                opaque({"whatever": True}, driver="other.example.com"),
                opaque(gpu_config({"strategy": "Magic"})),
            ],
        ),
        f"{PREFIX}: bad opaque config: config[1].opaque.parameters.sharing.strategy: "
        'unsupported strategy "Magic"; supported: TimeSlicing, MPS',
        id="bad-opaque-config",
    ),
    pytest.param(
        claim(
            "bad",
            gpu(0),
            config=[
                opaque(
                    gpu_config(
                        {
                            "strategy": "MPS",
                            "mpsConfig": {"defaultPerDevicePinnedMemoryLimit": {"GPU-nope": "1Gi"}},
                        }
                    ),
                    requests=["gpu"],
                )
            ],
        ),
        "MPS config: defaultPerDevicePinnedMemoryLimit[GPU-nope]: names none of the devices "
        "GPU-15bd2a47-96ef-56a3-86af-2b46d0cf0276",
        id="mps-limit-for-another-device",
    ),
]


@pytest.mark.parametrize(("in_cluster", "message"), CASES)
def test_a_bad_claim_fails_alone(
    dra: pluginserver.DraClient,
    book: claimbook.ClaimBook,
    plugin: pluginserver.PluginServer,
    in_cluster: claimbook.Json | None,
    message: str,
) -> None:
    if in_cluster is not None:
        book.add(in_cluster)
    good = claim("good", gpu(1))
    book.add(good)
    answer = dra.prepare(BAD, claimbook.ref(good))
    assert set(answer.claims) == {"bad", "good"}
    assert answer.claims["bad"].error == message
    assert list(answer.claims["bad"].devices) == []
    assert answer.claims["good"].error == ""
    assert [d.device_name for d in answer.claims["good"].devices] == ["gpu-1"]
    layout = plugin.layout
    assert not layout.cdi_spec("bad").exists()
    assert not layout.quota_dir("bad").exists()
    assert layout.checkpointed() == {"good": model.PrepareState.COMPLETED}
    assert plugin.backend.status(plugin.backend.gpus()[0].uuid).mig_instances == ()


def test_a_bad_claim_between_good_ones_fails_alone(
    dra: pluginserver.DraClient, book: claimbook.ClaimBook, plugin: pluginserver.PluginServer
) -> None:
    first = claim("first", mig(0, "1g.5gb", 0))
    last = claim("last", claimbook.shared(1, share_id="aaaaaaaa-0"))
    book.add(first)
    book.add(last)
    answer = dra.prepare(claimbook.ref(first), BAD, claimbook.ref(last))
    assert {uid: entry.error for uid, entry in answer.claims.items()} == {
        "first": "",
        "bad": f"{PREFIX} does not exist (any more)",
        "last": "",
    }
    assert set(plugin.layout.checkpointed()) == {"first", "last"}
