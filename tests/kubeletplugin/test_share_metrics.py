"""Per-share usage metrics, read from the claims' accounting state at scrape time.

Covers: a prepared share's limit, usage, processes and refusals exported with the claim's
namespace, name, UID, device and GPU UUID (which claims have shares: `Preparer.shared_claims`,
tested with the prepare flow); an unreadable state skipped (the rest still exported) and logged once. Live figures (processes holding memory in
real containers) are checked end to end in ``e2e/test_containers_get_the_driver.py``.
"""

from __future__ import annotations

import pathlib

import prometheus_client
from structlog.testing import capture_logs

from dra_driver.checkpoint import model
from dra_driver.isolation import quotastate
from kubeletplugin import sharemetrics

GPU = "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e"


def _claim(uid: str, *, shared: bool = True) -> model.PreparedClaim:
    quota = model.Quota(memory_bytes=4 << 30, cores=0) if shared else None
    device = model.PreparedDevice(
        request_names=("share",),
        pool="node",
        device="gpu-0-shared" if shared else "gpu-0",
        share_id="s" if shared else None,
        cdi_ids=(),
        gpu_uuid=GPU,
        isolation=model.Isolation(quota=quota),
    )
    return model.PreparedClaim(
        uid=model.ClaimUID(uid),
        namespace="ns",
        name=f"claim-{uid}",
        state=model.PrepareState.COMPLETED,
        devices=(device,),
    )


def test_a_share_is_exported_with_its_claim_and_an_unreadable_state_is_skipped(
    tmp_path: pathlib.Path,
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    quotastate.create(good, [GPU], [4 << 30])
    bad.write_bytes(b"not a state file")
    registry = prometheus_client.CollectorRegistry()
    claims = [(_claim("u1"), good), (_claim("u2"), bad)]
    registry.register(sharemetrics.ShareCollector(lambda: claims))

    with capture_logs() as logs:
        for _ in range(2):
            labels = {
                "namespace": "ns",
                "claim": "claim-u1",
                "claim_uid": "u1",
                "device": "gpu-0-shared",
                "gpu_uuid": GPU,
            }
            value = registry.get_sample_value
            assert value("gpu_dra_share_memory_limit_bytes", labels) == 4 << 30
            assert value("gpu_dra_share_memory_used_bytes", labels) == 0
            assert value("gpu_dra_share_processes", labels) == 0
            assert value("gpu_dra_share_refused_allocations_total", labels) == 0
            assert value("gpu_dra_share_memory_limit_bytes", {**labels, "claim_uid": "u2"}) is None

    assert [entry["event"] for entry in logs] == ["share.state_unreadable"]
