"""The checkpoint model is immutable: changes make new values, and nobody can edit one in place.

Covers: `with_claim` (add, replace), `without_claim` (remove, absent UID), caller-owned mappings
copied and frozen, values hashable and equal to ones built from plain dicts, a claim filed under
the wrong UID refused; isolation records frozen and hashable, a negative quota refused.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from dra_driver.checkpoint import model

UID_A = model.ClaimUID("0b5e4c6e-0000-4000-8000-00000000000a")
UID_B = model.ClaimUID("0b5e4c6e-0000-4000-8000-00000000000b")


def _claim(uid: model.ClaimUID, state: model.PrepareState) -> model.PreparedClaim:
    device = model.PreparedDevice(
        request_names=("gpu",),
        pool="node-a",
        device="gpu-0",
        share_id=None,
        cdi_ids=(f"k8s.gpu.dra.dev/claim={uid}-gpu-0",),
        gpu_uuid="GPU-1",
    )
    return model.PreparedClaim(uid=uid, namespace="ns", name="c", state=state, devices=(device,))


def test_with_claim_adds_and_replaces() -> None:
    empty = model.Checkpoint(boot_id="boot")
    started = _claim(UID_A, model.PrepareState.STARTED)
    completed = _claim(UID_A, model.PrepareState.COMPLETED)

    one = empty.with_claim(started)
    replaced = one.with_claim(completed)

    assert dict(one.claims) == {UID_A: started}
    assert dict(replaced.claims) == {UID_A: completed}
    assert empty.claims == {}  # the original is untouched


def test_without_claim_removes_and_ignores_unknown_uids() -> None:
    both = (
        model.Checkpoint(boot_id="boot")
        .with_claim(_claim(UID_A, model.PrepareState.COMPLETED))
        .with_claim(_claim(UID_B, model.PrepareState.COMPLETED))
    )
    assert set(both.without_claim(UID_A).claims) == {UID_B}
    assert both.without_claim(model.ClaimUID("unknown")) == both
    assert set(both.claims) == {UID_A, UID_B}


def test_mappings_are_copied_and_frozen() -> None:
    capacity = {"memory": "1Gi"}
    device = model.PreparedDevice(
        request_names=("gpu",),
        pool="p",
        device="gpu-0-shared",
        share_id="s",
        cdi_ids=(),
        gpu_uuid="GPU-1",
        consumed_capacity=capacity,
    )
    capacity["memory"] = "80Gi"
    assert device.consumed_capacity == {"memory": "1Gi"}
    with pytest.raises(TypeError):
        cast(dict[str, Any], device.consumed_capacity)["memory"] = "2Gi"
    checkpoint = model.Checkpoint(boot_id="boot")
    with pytest.raises(TypeError):
        cast(dict[str, Any], checkpoint.claims)[UID_A] = _claim(UID_A, model.PrepareState.STARTED)


def test_values_are_hashable_and_compare_by_content() -> None:
    claim = _claim(UID_A, model.PrepareState.COMPLETED)
    from_dict = model.Checkpoint(boot_id="boot", claims={UID_A: claim})
    from_method = model.Checkpoint(boot_id="boot").with_claim(claim)
    assert from_dict == from_method
    assert hash(from_dict) == hash(from_method)
    assert len({claim, _claim(UID_A, model.PrepareState.COMPLETED)}) == 1


def test_a_claim_filed_under_another_uid_is_refused() -> None:
    with pytest.raises(ValueError, match="filed under the UID"):
        model.Checkpoint(boot_id="boot", claims={UID_B: _claim(UID_A, model.PrepareState.STARTED)})


def test_isolation_is_immutable_and_hashable() -> None:
    unknown = {"quotaFile": "/q.json"}
    isolation = model.Isolation(
        mig=model.MigOrigin.DYNAMIC,
        quota=model.Quota(memory_bytes=1 << 30, cores=25),
        unknown=unknown,
    )
    unknown["quotaFile"] = "/other.json"
    assert isolation.unknown == {"quotaFile": "/q.json"}
    with pytest.raises(TypeError):
        cast(dict[str, Any], isolation.unknown)["quotaFile"] = "/other.json"
    same = model.Isolation(
        mig=model.MigOrigin.DYNAMIC,
        quota=model.Quota(memory_bytes=1 << 30, cores=25),
        unknown={"quotaFile": "/q.json"},
    )
    assert len({isolation, same}) == 1
    assert model.Isolation() == model.NO_ISOLATION


@pytest.mark.parametrize(("memory", "cores"), [(-1, 0), (0, -1)])
def test_a_negative_quota_is_refused(memory: int, cores: int) -> None:
    with pytest.raises(ValueError, match="not negative"):
        model.Quota(memory_bytes=memory, cores=cores)
