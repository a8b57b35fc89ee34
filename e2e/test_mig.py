"""MIG in full mode on fake A100-40GB nodes, allocated by the real kube-scheduler.

Covers: 56 one-slice (1g.5gb) claims fit on 8 GPUs and the 57th does not; the allocated slices on
each GPU never overlap; a 7g.40gb slice (and the whole GPU) cannot share a GPU with any other
slice, and can once that slice is gone; a mix of profiles packs as the placement rules allow and
never beyond.
"""

from __future__ import annotations

import collections
import re

import pytest

from dra_driver import hardware, layouts
from dra_driver.backends.fake import catalog
from dra_driver.slices import naming
from e2e.conftest import Scenario
from e2e.harness import objects

pytestmark = pytest.mark.e2e

A100 = catalog.MODELS["A100-40GB"]
_MIG_NAME = re.compile(r"^gpu-(?P<gpu>\d+)-mig-(?P<slug>[a-z0-9-]+)-(?P<start>\d+)$")


def mig(profile: str) -> list[dict[str, object]]:
    selector = f'device.attributes["gpu.dra.dev"].profile == "{profile}"'
    return [objects.request("mig", "mig.gpu.dra.dev", selectors=[selector])]


def slots_by_gpu(devices: list[str]) -> dict[int, list[layouts.Slot]]:
    """Parse allocated MIG device names back into (profile, placement) per GPU."""
    by_slug = {naming.profile_slug(p.name): p for p in A100.mig_profiles}
    result: dict[int, list[layouts.Slot]] = collections.defaultdict(list)
    for device in devices:
        match = _MIG_NAME.match(device)
        assert match, device
        profile = by_slug[match["slug"]]
        placement = hardware.Placement(int(match["start"]), profile.placements[0].size)
        assert placement in profile.placements
        result[int(match["gpu"])].append((profile, placement))
    return result


def test_56_one_slice_claims_fit_on_eight_gpus_and_the_57th_does_not(scenario: Scenario) -> None:
    node = scenario.node("8xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    for k in range(57):
        objects.create_claimed_pod(client, ns, f"mig-{k}", node=node, requests=mig("1g.5gb"))
    for k in range(56):
        objects.wait_scheduled(client, ns, f"mig-{k}", timeout=120)
    message = objects.wait_unschedulable(client, ns, "mig-56")
    assert "cannot allocate all claims" in message
    devices = [d for k in range(56) for d in objects.allocated_devices(client, ns, f"mig-{k}")]
    assert len(set(devices)) == 56
    per_gpu = slots_by_gpu(devices)
    assert sorted(per_gpu) == list(range(8))
    for slots in per_gpu.values():
        assert layouts.is_valid(slots)
        assert sorted(placement.start for _, placement in slots) == list(range(7))


@pytest.mark.parametrize("big", ["7g.40gb", "whole-gpu"])
def test_the_whole_gpu_or_7g_cannot_share_a_gpu_with_any_slice(
    scenario: Scenario, big: str
) -> None:
    node = scenario.node("1xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    requests = [objects.request("gpu", "gpu.dra.dev")] if big == "whole-gpu" else mig(big)
    objects.create_claimed_pod(client, ns, "small", node=node, requests=mig("1g.5gb"))
    objects.wait_scheduled(client, ns, "small")
    objects.create_claimed_pod(client, ns, "big", node=node, requests=requests)
    objects.wait_unschedulable(client, ns, "big")
    objects.delete_pod(client, ns, "small")
    objects.wait_scheduled(client, ns, "big", timeout=90)
    # And the other way round: with the big one allocated, no slice fits.
    objects.create_claimed_pod(client, ns, "small-again", node=node, requests=mig("1g.5gb"))
    objects.wait_unschedulable(client, ns, "small-again")


def test_a_mix_packs_as_the_placement_rules_allow_and_never_beyond(scenario: Scenario) -> None:
    node = scenario.node("2xA100-40GB")
    client, ns = scenario.client, scenario.namespace
    mix = ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"] * 2
    for k, profile in enumerate(mix):  # one at a time, big first, as an admin would place them
        objects.create_claimed_pod(client, ns, f"p-{k}", node=node, requests=mig(profile))
        objects.wait_scheduled(client, ns, f"p-{k}")
    devices = [d for k in range(len(mix)) for d in objects.allocated_devices(client, ns, f"p-{k}")]
    per_gpu = slots_by_gpu(devices)
    assert sorted(per_gpu) == [0, 1]
    for slots in per_gpu.values():
        assert layouts.is_valid(slots)
        assert sorted(p.name for p, _ in slots) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]
        assert sum(placement.size for _, placement in slots) == 8  # every memory slice used
    for k, profile in enumerate(["1g.5gb", "1g.10gb"]):
        objects.create_claimed_pod(client, ns, f"extra-{k}", node=node, requests=mig(profile))
        objects.wait_unschedulable(client, ns, f"extra-{k}")
        assert objects.allocation(client, ns, f"extra-{k}") == []
