"""Device names: every name the builder publishes parses back to what it names; others don't.

Covers: a round trip over every device of a mixed full-mode and compatibility-mode node, and
names this driver never publishes.
"""

from __future__ import annotations

import pytest

from dra_driver.slices import building, naming, settings
from tests.dra_driver.slices import nodes


@pytest.mark.parametrize("mode", list(settings.Mode), ids=lambda mode: mode.value)
def test_every_published_name_parses_back(mode: settings.Mode) -> None:
    config = settings.PublishSettings(mode=mode, shared=settings.SharedSettings(compat_shares=3))
    inventory = nodes.node("2xA100-40GB,1xH100-80GB,1xL4", admin=[(1, 9, 0)])
    for group in building.build(inventory, config):
        for device in group.devices:
            parsed = naming.parse(device["name"])
            assert parsed is not None, device["name"]
            assert parsed.gpu_index == group.index
            kind = nodes.attribute(device, "type")
            if kind == "mig":
                profile = str(nodes.attribute(device, "profile"))
                assert parsed.kind == "mig"
                assert parsed.profile_slug == naming.profile_slug(profile)
                assert parsed.start == nodes.attribute(device, "placementStart")
                assert parsed.start is not None
                assert naming.mig(group.index, profile, parsed.start) == device["name"]
            elif "shareIndex" in device["attributes"]:
                assert (parsed.kind, parsed.share) == (
                    "share",
                    nodes.attribute(device, "shareIndex"),
                )
            else:
                assert parsed.kind == kind


@pytest.mark.parametrize(
    "name",
    ["gpu", "gpu-01", "gpu-0-", "gpu-0-mig-1g5gb", "gpu-0-shared-1", "nvidia-0", "gpu-0-share-x"],
)
def test_foreign_names_do_not_parse(name: str) -> None:
    assert naming.parse(name) is None
