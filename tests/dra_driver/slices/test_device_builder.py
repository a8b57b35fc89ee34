"""The device builder: which devices a node publishes in each mode, and what they say.

Covers: full mode on A100/H100/L4 (device set, names, MIG placements per profile exactly as the
tables, attributes and versions, shared-device capacities and policies, preference order), an
admin's MIG instances (static devices, no whole/shared GPU, no overlapping placements), owned
instances staying published when dynamic MIG is off, and compatibility mode (whole GPUs, fixed
shares, static MIG, no counters).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from dra_driver import hardware
from dra_driver.slices import building, settings, wire
from tests.dra_driver.slices import nodes

FULL = settings.PublishSettings()
COMPAT = settings.PublishSettings(mode=settings.Mode.COMPAT)


def _devices(spec: str, config: settings.PublishSettings = FULL, **kw: object) -> list[wire.Device]:
    groups = building.build(nodes.node(spec, **kw), config)  # type: ignore[arg-type]
    return [device for group in groups for device in group.devices]


def _placements(devices: list[wire.Device]) -> dict[str, list[int]]:
    starts: dict[str, list[int]] = defaultdict(list)
    for device in devices:
        if nodes.attribute(device, "type") == "mig":
            starts[str(nodes.attribute(device, "profile"))].append(
                int(nodes.attribute(device, "placementStart"))  # type: ignore[call-overload]
            )
    return {profile: sorted(values) for profile, values in starts.items()}


A100_PLACEMENTS = {
    "1g.5gb": [0, 1, 2, 3, 4, 5, 6],
    "1g.5gb+me": [0, 1, 2, 3, 4, 5, 6],
    "1g.10gb": [0, 2, 4, 6],
    "2g.10gb": [0, 2, 4],
    "3g.20gb": [0, 4],
    "4g.20gb": [0],
    "7g.40gb": [0],
}


@pytest.mark.parametrize(
    ("model", "profiles"),
    [
        pytest.param("A100-40GB", A100_PLACEMENTS, id="A100-40GB"),
        pytest.param(
            "H100-80GB",
            {
                "1g.10gb": A100_PLACEMENTS["1g.5gb"],
                "1g.10gb+me": A100_PLACEMENTS["1g.5gb+me"],
                "1g.20gb": [0, 2, 4, 6],
                "2g.20gb": [0, 2, 4],
                "3g.40gb": [0, 4],
                "4g.40gb": [0],
                "7g.80gb": [0],
            },
            id="H100-80GB",
        ),
        pytest.param("L4", {}, id="L4-no-MIG"),
    ],
)
def test_mig_placements_per_profile_match_the_tables(
    model: str, profiles: dict[str, list[int]]
) -> None:
    assert _placements(_devices(f"1x{model}")) == profiles


def test_full_mode_eight_a100s() -> None:
    groups = building.build(nodes.node("8xA100-40GB"), FULL)
    assert [group.index for group in groups] == list(range(8))
    for group in groups:
        names = [device["name"] for device in group.devices]
        i = group.index
        assert names[:2] == [f"gpu-{i}", f"gpu-{i}-shared"]
        assert len(names) == 2 + 7 + 7 + 4 + 3 + 2 + 1 + 1
        assert f"gpu-{i}-mig-1g5gb-me-6" in names
        assert group.counter_set is not None
        assert group.counter_set["name"] == f"gpu-{i}-counters"
        assert all(
            d["consumesCounters"][0]["counterSet"] == f"gpu-{i}-counters" for d in group.devices
        )


def test_whole_gpu_attributes() -> None:
    gpu = _devices("8xA100-40GB")[27 * 5]  # GPU 5, on the second NUMA node
    assert gpu["name"] == "gpu-5"
    assert {name: nodes.attribute(gpu, name) for name in gpu["attributes"]} == {
        "type": "gpu",
        "uuid": nodes.node("8xA100-40GB").gpus[5].info.uuid,
        "index": 5,
        "migCapable": True,
        "productName": "NVIDIA A100-SXM4-40GB",
        "brand": "Nvidia",
        "architecture": "Ampere",
        "cudaComputeCapability": "8.0.0",
        "driverVersion": "560.35.3",
        "cudaDriverVersion": "12.6.0",
        "resource.kubernetes.io/pciBusID": "0000:8f:00.0",
        "resource.kubernetes.io/pcieRoot": "pci0000:80",
        "resource.kubernetes.io/numaNode": 1,
    }
    assert gpu["capacity"] == {"memory": {"value": "40Gi"}, "multiprocessors": {"value": "108"}}


def test_mig_device_attributes_and_capacity() -> None:
    device = next(d for d in _devices("1xA100-40GB") if d["name"] == "gpu-0-mig-3g20gb-4")
    assert nodes.attribute(device, "profile") == "3g.20gb"
    assert nodes.attribute(device, "profileId") == 9
    assert nodes.attribute(device, "placementSize") == 4
    assert nodes.attribute(device, "parentIndex") == 0
    assert "uuid" not in device["attributes"]  # created at prepare, so unknown here
    assert device["capacity"]["memory"] == {"value": "19968Mi"}
    assert device["capacity"]["multiprocessors"] == {"value": "42"}
    assert device["consumesCounters"][0]["counters"] == {
        "memory": {"value": "19968Mi"},
        "multiprocessors": {"value": "42"},
        **{f"memory-slice-{k}": {"value": "1"} for k in (4, 5, 6, 7)},
    }


def test_shared_device_offers_consumable_memory_and_cores() -> None:
    config = settings.PublishSettings(
        shared=settings.SharedSettings(
            strategy_overrides={"1": settings.SharingStrategy.TIMESLICING}
        )
    )
    devices = {d["name"]: d for d in _devices("2xH100-80GB", config)}
    shared = devices["gpu-0-shared"]
    assert shared["allowMultipleAllocations"] is True
    assert shared["capacity"] == {
        "memory": {
            "value": "81559Mi",
            "requestPolicy": {"default": "1Gi", "validRange": {"min": "256Mi", "step": "256Mi"}},
        },
        "cores": {
            "value": "100",
            "requestPolicy": {"default": "0", "validRange": {"min": "0", "step": "1"}},
        },
    }
    assert nodes.attribute(shared, "sharingStrategy") == "mps"
    assert nodes.attribute(devices["gpu-1-shared"], "sharingStrategy") == "timeslicing"
    # The shared device costs exactly what the whole GPU costs: they exclude each other.
    assert shared["consumesCounters"] == devices["gpu-0"]["consumesCounters"]


def test_shared_devices_can_be_turned_off() -> None:
    config = settings.PublishSettings(shared=settings.SharedSettings(enabled=False))
    assert not [d for d in _devices("1xL4", config) if d["name"].endswith("-shared")]


def test_mig_devices_are_listed_small_profiles_at_high_starts_first() -> None:
    names = [d["name"] for d in _devices("1xA100-40GB")]
    ones = [n for n in names if n.startswith("gpu-0-mig-1g5gb-") and "-me-" not in n]
    assert ones == [f"gpu-0-mig-1g5gb-{start}" for start in (6, 5, 4, 3, 2, 1, 0)]
    assert names.index("gpu-0-mig-1g5gb-0") < names.index("gpu-0-mig-1g5gb-me-6")
    assert names.index("gpu-0-mig-1g10gb-0") < names.index("gpu-0-mig-2g10gb-4")
    assert names[-1] == "gpu-0-mig-7g40gb-0"


def test_admin_instances_become_static_devices_and_block_the_rest_of_their_slices() -> None:
    inventory = nodes.node("2xA100-40GB", admin=[(0, 9, 0), (0, 19, 5)])
    group = building.build(inventory, FULL)[0]
    names = [d["name"] for d in group.devices]
    assert "gpu-0" not in names
    assert "gpu-0-shared" not in names
    static = {d["name"]: d for d in group.devices if "uuid" in d["attributes"]}
    assert set(static) == {"gpu-0-mig-3g20gb-0", "gpu-0-mig-1g5gb-5"}
    assert {nodes.attribute(d, "uuid") for d in static.values()} == {
        i.uuid for i in inventory.gpus[0].admin_instances
    }
    dynamic = _placements([d for d in group.devices if "uuid" not in d["attributes"]])
    assert dynamic == {"1g.5gb": [4, 6], "1g.5gb+me": [4, 6], "1g.10gb": [6]}
    # The other GPU is untouched.
    assert "gpu-1" in [d["name"] for d in building.build(inventory, FULL)[1].devices]


def test_owned_instances_stay_published_when_dynamic_mig_is_off() -> None:
    config = settings.PublishSettings(dynamic_mig=False)
    devices = _devices("1xA100-40GB", config, owned=[(0, 14, 2)])
    assert [d["name"] for d in devices] == ["gpu-0", "gpu-0-shared", "gpu-0-mig-2g10gb-2"]
    assert "uuid" not in devices[2]["attributes"]


def test_non_mig_gpu_counter_set_has_no_memory_slices() -> None:
    group = building.build(nodes.node("1xL4"), FULL)[0]
    assert group.counter_set is not None
    assert set(group.counter_set["counters"]) == {"memory", "multiprocessors"}


def test_instance_capped_profiles_get_a_counter() -> None:
    group = building.build(nodes.node("1xA100-40GB"), FULL)[0]
    assert group.counter_set is not None
    assert group.counter_set["counters"]["mig-1g5gb-me-instances"] == {"value": "1"}
    me = next(d for d in group.devices if d["name"] == "gpu-0-mig-1g5gb-me-3")
    assert me["consumesCounters"][0]["counters"]["mig-1g5gb-me-instances"] == {"value": "1"}


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        pytest.param(0, [("gpu-0", "40Gi", "108")], id="whole-gpu"),
        pytest.param(
            4,
            [(f"gpu-0-share-{k}", "10Gi", "25") for k in range(4)],
            id="four-shares",
        ),
        pytest.param(3, [(f"gpu-0-share-{k}", "13653Mi", "33") for k in range(3)], id="three"),
    ],
)
def test_compat_mode_whole_gpu_or_fixed_shares_never_both(
    shares: int, expected: list[tuple[str, str, str]]
) -> None:
    config = settings.PublishSettings(
        mode=settings.Mode.COMPAT, shared=settings.SharedSettings(compat_shares=shares)
    )
    groups = building.build(nodes.node("1xA100-40GB"), config)
    assert groups[0].counter_set is None
    seen = []
    for device in groups[0].devices:
        assert "consumesCounters" not in device
        assert "allowMultipleAllocations" not in device
        key = "multiprocessors" if shares == 0 else "cores"
        seen.append(
            (
                device["name"],
                device["capacity"]["memory"]["value"],
                device["capacity"][key]["value"],
            )
        )
    assert seen == expected


def test_compat_mode_mig_gpus_offer_their_instances_only() -> None:
    devices = _devices("1xA100-40GB,1xL4", COMPAT, admin=[(0, 14, 0), (0, 9, 4)])
    assert [d["name"] for d in devices] == ["gpu-0-mig-2g10gb-0", "gpu-0-mig-3g20gb-4", "gpu-1"]
    assert all("uuid" in d["attributes"] for d in devices)


def test_compat_mode_mig_enabled_gpu_without_instances_offers_nothing() -> None:
    assert _devices("1xA100-40GB", COMPAT, mig_enabled=[0]) == []


@pytest.mark.parametrize(
    ("xid", "expected"),
    [
        pytest.param(
            79, {"key": "gpu.dra.dev/xid", "value": "79", "effect": "NoSchedule"}, id="xid"
        ),
        pytest.param(0, {"key": "gpu.dra.dev/gpu-lost", "effect": "NoSchedule"}, id="lost"),
    ],
)
@pytest.mark.parametrize("mode", list(settings.Mode), ids=lambda mode: mode.value)
def test_an_unhealthy_gpu_keeps_its_devices_but_taints_them(
    xid: int, expected: dict[str, str], mode: settings.Mode
) -> None:
    node = nodes.node("2xA100-40GB")
    event = hardware.HealthEvent(node.gpus[1].info.uuid, xid, "boom", 0.0)
    config = settings.PublishSettings(mode=mode)
    healthy = building.build(node, config)
    groups = building.build(node, config, {event.gpu_uuid: event})
    assert [d["name"] for d in groups[1].devices] == [d["name"] for d in healthy[1].devices]
    assert all(d["taints"] == [expected] for d in groups[1].devices)
    assert all("taints" not in d for d in groups[0].devices)
    assert groups[1].counter_set == healthy[1].counter_set
