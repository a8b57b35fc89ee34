"""The checkpoint model is immutable: changes make new values, and nobody can edit one in place.

Covers: `with_claim` (add, replace), `without_claim` (remove, absent UID), the indexes of holders
and created MIG devices kept as if built anew after any change, caller-owned mappings
copied and frozen, values hashable and equal to ones built from plain dicts, a claim filed under
the wrong UID refused; isolation records frozen and hashable, a negative quota refused.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dra_driver.checkpoint import model
from tests.dra_driver.checkpoint import strategies

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


def _indexes(
    checkpoint: model.Checkpoint,
) -> tuple[dict[model.DeviceKey, set[model.ClaimUID]], dict[str, int]]:
    holders = {key: set(uids) for key, uids in checkpoint.holders.items()}
    return holders, dict(checkpoint.dynamic_migs)


CHANGES = st.lists(
    st.one_of(strategies.claims(), st.integers(min_value=0, max_value=20)), max_size=12
)
"""Changes to a checkpoint: a claim added or replaced (a claim), or one removed (an index into
the claims held)."""


def _apply(checkpoint: model.Checkpoint, change: model.PreparedClaim | int) -> model.Checkpoint:
    if isinstance(change, int):
        held = sorted(checkpoint.claims)
        gone = held[change % len(held)] if held else model.ClaimUID("none")
        return checkpoint.without_claim(gone)
    return checkpoint.with_claim(change)


@given(strategies.checkpoints(), CHANGES)
def test_indexes_follow_every_change_as_if_built_anew(
    checkpoint: model.Checkpoint, changes: list[model.PreparedClaim | int]
) -> None:
    for change in changes:
        checkpoint = _apply(checkpoint, change)
        fresh = model.Checkpoint(boot_id=checkpoint.boot_id, claims=checkpoint.claims)
        assert checkpoint == fresh
        assert _indexes(checkpoint) == _indexes(fresh)
    for (pool, name), uids in checkpoint.holders.items():
        for uid in uids:
            assert (pool, name) in {(d.pool, d.device) for d in checkpoint.claims[uid].devices}


def test_the_indexes_name_holders_and_created_mig_devices() -> None:
    def device(name: str, mig: str | None, origin: model.MigOrigin | None) -> model.PreparedDevice:
        return model.PreparedDevice(
            request_names=("r",),
            pool="node-a",
            device=name,
            share_id=None,
            cdi_ids=(),
            gpu_uuid="GPU-1",
            mig_uuid=mig,
            isolation=model.Isolation(mig=origin),
        )

    created = device("gpu-0-mig-1g5gb-0", "MIG-a", model.MigOrigin.DYNAMIC)
    admins = device("gpu-0-mig-1g5gb-1", "MIG-b", model.MigOrigin.STATIC)
    a = model.PreparedClaim(
        model.ClaimUID("a"), "ns", "a", model.PrepareState.COMPLETED, (created,)
    )
    b = model.PreparedClaim(
        model.ClaimUID("b"), "ns", "b", model.PrepareState.COMPLETED, (created, admins)
    )
    both = model.Checkpoint(boot_id="boot").with_claim(a).with_claim(b)
    assert dict(both.holders) == {
        ("node-a", "gpu-0-mig-1g5gb-0"): ("a", "b"),
        ("node-a", "gpu-0-mig-1g5gb-1"): ("b",),
    }
    assert dict(both.dynamic_migs) == {"MIG-a": 2}
    assert dict(both.without_claim(model.ClaimUID("a")).dynamic_migs) == {"MIG-a": 1}
    assert both.without_claim(model.ClaimUID("a")).without_claim(model.ClaimUID("b")).holders == {}


@given(strategies.checkpoints(), CHANGES)
def test_changed_since_names_every_claim_that_differs(
    base: model.Checkpoint, changes: list[model.PreparedClaim | int]
) -> None:
    """Whatever `with_claim` and `without_claim` did on the way from `base`, a claim that
    `changed_since` does not name is the same object in both (what a save may skip)."""
    base = base.without_history()  # as a writer keeps what it saved
    checkpoint = base
    for change in changes:
        checkpoint = _apply(checkpoint, change)
    changed = checkpoint.changed_since(base)
    if changed is None:
        assert len(changes) > model.HISTORY  # only a way longer than the history is forgotten
        return
    for uid in (base.claims.keys() | checkpoint.claims.keys()) - changed:
        assert base.claims.get(uid) is checkpoint.claims.get(uid)
    settled = checkpoint.without_history()
    assert settled == checkpoint
    assert settled.changed_since(checkpoint) == set()
    assert settled.changed_since(base) in (None, set())  # its history is gone


def test_changed_since_is_none_for_a_checkpoint_made_otherwise() -> None:
    claim = model.PreparedClaim(model.ClaimUID("a"), "ns", "a", model.PrepareState.COMPLETED, ())
    base = model.Checkpoint(boot_id="boot")
    rebuilt = model.Checkpoint(boot_id="boot", claims={claim.uid: claim})
    assert rebuilt.changed_since(base) is None
    assert base.with_claim(claim).changed_since(base) == {"a"}
    assert base.with_claim(claim).without_claim(claim.uid).changed_since(base) == {"a"}


def test_the_history_goes_back_a_bounded_number_of_calls() -> None:
    """Each step keeps a copy of the claims: a longer way than `HISTORY` is forgotten."""
    base = model.Checkpoint(boot_id="boot")
    checkpoint = base
    for i in range(model.HISTORY):
        uid = model.ClaimUID(f"u{i}")
        checkpoint = checkpoint.with_claim(
            model.PreparedClaim(uid, "ns", uid, model.PrepareState.COMPLETED, ())
        )
    assert checkpoint.changed_since(base) == {f"u{i}" for i in range(model.HISTORY)}
    longer = checkpoint.without_claim(model.ClaimUID("u0"))
    assert longer.changed_since(base) is None
    assert longer.changed_since(checkpoint) is None  # the step past the bound starts anew
    assert longer.without_claim(model.ClaimUID("u1")).changed_since(longer) == {"u1"}
