"""The scheduler's counter arithmetic allows exactly what the GPU allows (full mode).

Covers, for every MIG-capable model: any set of devices of one GPU fits in its counter set if and
only if the hardware could hold it at once (soundness: no 3g.20gb over a 4g.20gb, no second +me, no
MIG beside the whole or shared GPU; completeness: every valid MIG layout fits), also next to an
admin's static instances; and the totals are the GPU's own figures.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dra_driver import hardware, inventory, layouts
from dra_driver.backends.fake import catalog
from dra_driver.slices import building, counters, wire
from dra_driver.slices import settings as publish
from tests.dra_driver.slices import nodes

MIG_MODELS = [name for name, model in catalog.MODELS.items() if model.mig_profiles]


def _slot(gpu: hardware.GpuInfo, device: wire.Device) -> layouts.Slot:
    profile = gpu.mig_profile(int(nodes.attribute(device, "profileId")))  # type: ignore[call-overload]
    start = int(nodes.attribute(device, "placementStart"))  # type: ignore[call-overload]
    return profile, hardware.Placement(start, profile.placements[0].size)


def hardware_allows(entry: inventory.GpuInventory, devices: list[wire.Device]) -> bool:
    """Could all of `devices` be in use at once on the real GPU (next to its admin instances)?"""
    kinds = [nodes.attribute(device, "type") for device in devices]
    if "gpu" in kinds or "shared" in kinds:
        return len(devices) == 1
    chosen = {_slot(entry.info, device) for device in devices}
    existing = {(entry.info.mig_profile(i.profile_id), i.placement) for i in entry.admin_instances}
    return layouts.is_valid(chosen | existing)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(MIG_MODELS),
    admin=st.sampled_from([(), ((0, 20, 2),), ((0, 9, 0), (0, 19, 6))]),
    picks=st.lists(st.integers(0, 40), max_size=6),
)
def test_counters_allow_a_set_exactly_when_the_hardware_does(
    model: str, admin: tuple[tuple[int, int, int], ...], picks: list[int]
) -> None:
    node = nodes.node(f"1x{model}", admin=admin)
    group = building.build(node, publish.PublishSettings())[0]
    assert group.counter_set is not None
    chosen = list(
        {
            group.devices[i % len(group.devices)]["name"]: group.devices[i % len(group.devices)]
            for i in picks
        }.values()
    )
    assert nodes.fits(chosen, group.counter_set) == hardware_allows(node.gpus[0], chosen)


def test_every_valid_mig_layout_fits_and_nothing_fits_beside_a_whole_gpu() -> None:
    for model in MIG_MODELS:
        node = nodes.node(f"1x{model}")
        group = building.build(node, publish.PublishSettings())[0]
        assert group.counter_set is not None
        by_slot = {
            _slot(node.gpus[0].info, d): d
            for d in group.devices
            if nodes.attribute(d, "type") == "mig"
        }
        maximal = list(layouts.maximal_layouts(node.gpus[0].info.mig_profiles))
        assert len(maximal) > 100
        for layout in maximal:
            assert nodes.fits([by_slot[slot] for slot in layout], group.counter_set), layout
        whole, shared = group.devices[0], group.devices[1]
        assert nodes.fits([whole], group.counter_set)
        assert nodes.fits([shared], group.counter_set)
        assert not nodes.fits([whole, shared], group.counter_set)
        for device in by_slot.values():
            assert not nodes.fits([shared, device], group.counter_set)
            assert not nodes.fits([whole, device], group.counter_set)


def test_totals_are_the_gpus_own_figures_for_every_catalog_model() -> None:
    for model in catalog.MODELS.values():
        info = nodes.node(f"1x{model.name}").gpus[0].info
        totals = counters.totals(info)
        assert totals["memory"] == model.memory_bytes
        assert totals["multiprocessors"] == model.multiprocessors
