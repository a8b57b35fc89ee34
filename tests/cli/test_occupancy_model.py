"""The occupancy model built from cluster objects (`cli.mapping`), as a specification.

Covers: what each GPU serves and who holds it (claims' results joined to the pods in
``reservedFor``); the MIG layout (held placements, free memory slices, what still fits, as the
scheduler's counters decide, and in agreement with the hardware's layout rules for any set of
held placements); shares against the GPU's capacity; fixed shares of compatibility mode; taints
from slices and from DeviceTaintRules, and health; only a pool's newest generation; other
drivers' results ignored; the namespace filter.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cli import mapping, occupancy
from dra_driver import backends, layouts
from dra_driver.slices import naming
from dra_driver.slices import settings as publish
from tests.cli import cluster

DRIVER = cluster.DRIVER


def _map(snapshot: object, **kwargs: object) -> occupancy.Map:
    return mapping.build(snapshot, driver=DRIVER, **kwargs)  # type: ignore[arg-type]


def _gpus(snapshot: object, **kwargs: object) -> dict[int, occupancy.Gpu]:
    (node,) = _map(snapshot, **kwargs).nodes
    return {gpu.index: gpu for gpu in node.gpus}


def test_each_gpu_of_the_demo_serves_what_its_claims_got() -> None:
    gpus = _gpus(cluster.demo())
    serving = {i: g.serving for i, g in gpus.items()}
    assert serving == {
        0: occupancy.Serving.WHOLE,
        1: occupancy.Serving.MIG,
        2: occupancy.Serving.SHARES,
        3: occupancy.Serving.WHOLE,
        **dict.fromkeys(range(4, 8), occupancy.Serving.FREE),
    }
    (holder,) = gpus[0].whole
    assert (holder.namespace, holder.claim, holder.request) == ("default", "gpu-pod-gpu", "gpu")
    assert holder.pods == (occupancy.Pod("gpu-pod", "Running"),)
    (timesliced,) = gpus[3].whole
    assert [p.name for p in timesliced.pods] == ["timesliced-pod-a", "timesliced-pod-b"]
    assert all(g.product == "NVIDIA A100-SXM4-40GB" for g in gpus.values())
    assert gpus[0].memory_bytes == 40 * 2**30
    assert gpus[0].multiprocessors == 108


def test_a_held_mig_placement_takes_its_memory_slices_and_what_overlaps_it() -> None:
    layout = _gpus(cluster.demo())[1].mig
    assert layout is not None
    (slot,) = layout.held
    assert (slot.device, slot.profile, slot.start, slot.memory_slices) == (
        "gpu-1-mig-1g5gb-6",
        "1g.5gb",
        6,
        (6,),
    )
    assert [p.name for h in slot.holders for p in h.pods] == ["mig-pod"]
    assert layout.slices == 8
    assert layout.free_slices == (0, 1, 2, 3, 4, 5, 7)
    fits = {(s.profile, s.start) for s in layout.fits}
    assert ("3g.20gb", 0) in fits
    assert ("3g.20gb", 4) not in fits
    assert ("7g.40gb", 0) not in fits
    assert ("1g.10gb", 6) not in fits
    assert ("1g.10gb", 4) in fits
    assert not _gpus(cluster.demo())[1].fits_whole


def test_a_whole_gpu_or_shares_leave_no_mig_slice_free() -> None:
    gpus = _gpus(cluster.demo())
    for index in (0, 2, 3):
        layout = gpus[index].mig
        assert layout is not None
        assert layout.free_slices == ()
        assert layout.fits == ()
        assert layout.held == ()
    assert gpus[5].fits_whole
    assert gpus[5].mig is not None
    assert gpus[5].mig.free_slices == tuple(range(8))


def test_shares_count_against_the_gpus_memory_and_cores() -> None:
    pool = _gpus(cluster.demo())[2].shares
    assert pool is not None
    assert pool.devices == ("gpu-2-shared",)
    assert pool.strategy == "mps"
    assert (pool.memory_bytes, pool.cores) == (40 * 2**30, 100)
    assert (pool.memory_allocated, pool.cores_allocated) == (20 * 2**30, 50)
    assert [(s.holder.claim, s.memory_bytes, s.cores) for s in pool.shares] == [
        ("fraction-pod-a-share", 10 * 2**30, 25),
        ("fraction-pod-b-share", 10 * 2**30, 25),
    ]
    assert len({s.holder.share_id for s in pool.shares}) == 2
    assert pool.accepting


def test_share_usage_joins_by_claim_uid_and_gpu_uuid() -> None:
    gpu = _gpus(cluster.demo())[2]
    usage = occupancy.Usage(used_bytes=3 * 2**30, limit_bytes=10 * 2**30)
    key = ("uid-default-fraction-pod-a-share", gpu.uuid)
    pool = _gpus(cluster.demo(), usage={key: usage})[2].shares
    assert pool is not None
    assert [s.usage for s in pool.shares] == [usage, None]


def test_a_mig_slice_stops_new_shares_and_the_whole_gpu() -> None:
    snapshot = cluster.snapshot(
        cluster.node_slices("node-a", "1xA100-40GB"),
        [cluster.claim("c", cluster.result("gpu-0-mig-3g20gb-4"))],
    )
    gpu = _gpus(snapshot)[0]
    assert gpu.shares is not None
    assert not gpu.shares.accepting
    assert not gpu.fits_whole
    assert gpu.mig is not None
    assert gpu.mig.free_slices == (0, 1, 2, 3)
    holder = gpu.mig.held[0].holders[0]
    assert holder.pods == ()  # allocated, not yet reserved for a pod


def test_an_instance_cap_limits_what_fits() -> None:
    """One ``1g.5gb+me`` per GPU (its instance counter), wherever the first one is."""
    snapshot = cluster.snapshot(
        cluster.node_slices("node-a", "1xA100-40GB"),
        [cluster.claim("c", cluster.result("gpu-0-mig-1g5gb-me-0"))],
    )
    layout = _gpus(snapshot)[0].mig
    assert layout is not None
    assert not any(s.profile == "1g.5gb+me" for s in layout.fits)
    assert any(s.profile == "1g.5gb" and s.start == 1 for s in layout.fits)


def _a100() -> list[tuple[str, int]]:
    gpu = backends.open_backend("fake:1xA100-40GB", node_name="n").gpus()[0]
    return [(p.name, pl.start) for p, pl in layouts.candidates(gpu.mig_profiles)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(_a100()), max_size=7, unique=True))
def test_fits_agree_with_the_hardware_layout_rules(picked: list[tuple[str, int]]) -> None:
    """For any valid set of held placements, a placement fits exactly when the hardware would
    allow it beside them, and the free slices are those no held placement covers."""
    gpu = backends.open_backend("fake:1xA100-40GB", node_name="n").gpus()[0]
    by_key = {(p.name, pl.start): (p, pl) for p, pl in layouts.candidates(gpu.mig_profiles)}
    held: list[layouts.Slot] = []
    for key in picked:
        if layouts.is_valid([*held, by_key[key]]):
            held.append(by_key[key])
    claims = [
        cluster.claim(f"c{n}", cluster.result(naming.mig(0, p.name, pl.start)))
        for n, (p, pl) in enumerate(held)
    ]
    snapshot = cluster.snapshot(cluster.node_slices("node-a", "1xA100-40GB"), claims)
    layout = _gpus(snapshot)[0].mig
    assert layout is not None
    fits = {(s.profile, s.start) for s in layout.fits}
    expected = {
        key for key, slot in by_key.items() if slot not in held and layouts.is_valid([*held, slot])
    }
    assert fits == expected
    covered = {k for _, pl in held for k in pl.memory_slices}
    assert layout.free_slices == tuple(k for k in range(8) if k not in covered)
    assert {(s.profile, s.start) for s in layout.held} == {(p.name, pl.start) for p, pl in held}


def test_fixed_shares_in_compatibility_mode() -> None:
    config = publish.PublishSettings(
        mode=publish.Mode.COMPAT, shared=publish.SharedSettings(compat_shares=4)
    )
    slices = cluster.node_slices("node-a", "1xL4", config=config)
    claims = [cluster.claim("c", cluster.result("gpu-0-share-2"), pods=("p",))]
    gpu = _gpus(cluster.snapshot(slices, claims, [cluster.pod("p")]))[0]
    assert gpu.serving is occupancy.Serving.SHARES
    assert gpu.shares is not None
    assert len(gpu.shares.devices) == 4
    (share,) = gpu.shares.shares
    assert share.device == "gpu-0-share-2"
    assert share.cores == 25
    assert share.memory_bytes == gpu.shares.memory_bytes // 4
    assert gpu.shares.accepting
    assert gpu.whole_device is None
    assert gpu.mig is None


def test_taints_from_the_slice_mark_the_gpu_unhealthy() -> None:
    taint = {"key": "gpu.dra.dev/xid", "value": "79", "effect": "NoSchedule"}
    names = [
        d["name"]
        for s in cluster.node_slices("node-a", "1xT4")
        for d in s["spec"].get("devices", [])
    ]
    slices = cluster.node_slices("node-a", "1xT4", taints={n: [taint] for n in names})
    gpu = _gpus(cluster.snapshot(slices))[0]
    assert gpu.health is occupancy.Health.UNHEALTHY
    assert gpu.health_reason == "xid 79"
    assert [(t.key, t.value, t.effect, t.devices) for t in gpu.taints] == [
        ("gpu.dra.dev/xid", "79", "NoSchedule", ())
    ]
    assert not gpu.fits_whole
    assert gpu.shares is not None
    assert not gpu.shares.accepting


def test_a_device_taint_rule_taints_the_devices_it_selects() -> None:
    rule = cluster.taint_rule("drain-gpu-0", key="example.com/maintenance", device="gpu-0")
    other = cluster.taint_rule("other-driver", key="x", driver="other.example.com")
    gpu = _gpus(cluster.snapshot(cluster.node_slices("node-a", "1xT4"), rules=[rule, other]))[0]
    assert [(t.key, t.devices, t.rule) for t in gpu.taints] == [
        ("example.com/maintenance", ("gpu-0",), "drain-gpu-0")
    ]
    assert gpu.health is occupancy.Health.HEALTHY  # an admin's rule is not a health verdict
    assert not gpu.fits_whole
    assert gpu.shares is not None
    assert gpu.shares.accepting


def test_the_kubelet_reporting_a_device_unhealthy_marks_its_gpu() -> None:
    status = {
        "containerStatuses": [
            {
                "allocatedResourcesStatus": [
                    {
                        "name": "claim:c/gpu",
                        "resources": [
                            {"resourceID": f"{DRIVER}/node-a/gpu-0", "health": "Unhealthy"}
                        ],
                    }
                ]
            }
        ]
    }
    snapshot = cluster.snapshot(
        cluster.node_slices("node-a", "2xT4"),
        [cluster.claim("c", cluster.result("gpu-0"), pods=("p",))],
        [cluster.pod("p", status=status)],
    )
    gpus = _gpus(snapshot)
    assert gpus[0].health is occupancy.Health.UNHEALTHY
    assert "gpu-0" in gpus[0].health_reason
    assert gpus[1].health is occupancy.Health.HEALTHY


def test_only_the_newest_generation_of_a_pool_counts() -> None:
    old = cluster.node_slices("node-a", "1xT4", generation=1)
    new = cluster.node_slices("node-a", "2xT4", generation=2)
    (node,) = _map(cluster.snapshot(old + new)).nodes
    assert [g.index for g in node.gpus] == [0, 1]


def test_results_of_other_drivers_and_pools_are_not_ours() -> None:
    claims = [
        cluster.claim("a", cluster.result("gpu-0", driver="other.example.com")),
        cluster.claim("b", cluster.result("gpu-0", node="node-b")),
    ]
    gpu = _gpus(cluster.snapshot(cluster.node_slices("node-a", "1xT4"), claims))[0]
    assert gpu.serving is occupancy.Serving.FREE
    assert gpu.fits_whole


def test_a_namespace_keeps_only_the_gpus_serving_its_claims() -> None:
    slices = cluster.node_slices("node-a", "3xT4") + cluster.node_slices("node-b", "1xT4")
    claims = [
        cluster.claim("mine", cluster.result("gpu-1"), namespace="team-a"),
        cluster.claim("theirs", cluster.result("gpu-0"), namespace="team-b"),
    ]
    found = _map(cluster.snapshot(slices, claims), namespace="team-a")
    assert [(n.name, [g.index for g in n.gpus]) for n in found.nodes] == [("node-a", [1])]
    assert [(n.name, len(n.gpus)) for n in _map(cluster.snapshot(slices, claims)).nodes] == [
        ("node-a", 3),
        ("node-b", 1),
    ]
