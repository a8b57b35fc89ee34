"""Planning the writes that publish a pool (the Go resourceslice controller's rules), no server.

Covers: a first publish creates every slice at generation 1; an unchanged pool plans nothing; one
changed slice is updated in place at the same generation; two changes, a new slice or a shrunk
pool bump the generation and rewrite everything; slices of an older generation and stray ones are
deleted first; and a hypothesis property: applying any plan to a simulated server and planning
again gives no writes, with every stored slice at the plan's generation and count.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller import slicediff
from dra_driver.slices import building, splitting
from dra_driver.slices import settings as publish
from tests.dra_driver.slices import nodes

TARGET = slicediff.Target(driver="gpu.dra.dev", node_name="n1", pool="n1")
_names = itertools.count()


def desired(spec: str, mode: publish.Mode = publish.Mode.FULL) -> list[splitting.SliceContent]:
    return splitting.split(building.build(nodes.node(spec), publish.PublishSettings(mode=mode)))


def apply(server: list[dict[str, Any]], plan: slicediff.Plan) -> list[dict[str, Any]]:
    """What a server holds after `plan` (names generated, resourceVersions bumped)."""
    gone = {s["metadata"]["name"] for s in plan.deletes}
    result = [s for s in server if s["metadata"]["name"] not in gone]
    for update in plan.updates:
        result = [s for s in result if s["metadata"]["name"] != update["metadata"]["name"]]
        result.append(copy.deepcopy(update))
    for create in plan.creates:
        obj = copy.deepcopy(create)
        obj["metadata"] = {
            "name": obj["metadata"]["generateName"] + str(next(_names)),
            "uid": f"uid-{next(_names)}",
            "resourceVersion": "1",
        }
        result.append(obj)
    return result


def test_first_publish_creates_everything_at_generation_1() -> None:
    plan = slicediff.plan(desired("2xA100-40GB"), [], TARGET)
    assert (plan.generation, len(plan.creates), plan.updates, plan.deletes) == (1, 3, (), ())
    assert [c["metadata"]["generateName"] for c in plan.creates] == [
        "00000-gpu.dra.dev-n1-",
        "00001-gpu.dra.dev-n1-",
        "00002-gpu.dra.dev-n1-",
    ]


def test_unchanged_pool_plans_nothing() -> None:
    server = apply([], slicediff.plan(desired("2xA100-40GB"), [], TARGET))
    assert slicediff.plan(desired("2xA100-40GB"), server, TARGET).writes == 0


def test_one_changed_slice_is_updated_in_place() -> None:
    server = apply([], slicediff.plan(desired("2xL4"), [], TARGET))
    other = desired("2xL4", publish.Mode.FULL)
    device = other[2].devices[0]
    device["attributes"] = {**device["attributes"], "extra": {"int": 1}}
    plan = slicediff.plan(other, server, TARGET)
    assert (plan.generation, len(plan.updates), plan.creates, plan.deletes) == (1, 1, (), ())
    assert plan.updates[0]["metadata"]["name"].startswith("00002-")


def test_growth_and_shrinkage_bump_the_generation() -> None:
    server = apply([], slicediff.plan(desired("2xL4"), [], TARGET))
    grown = slicediff.plan(desired("3xL4"), server, TARGET)
    assert (grown.generation, len(grown.updates), len(grown.creates)) == (2, 3, 1)
    server = apply(server, grown)
    shrunk = slicediff.plan(desired("1xL4"), server, TARGET)
    assert shrunk.generation == 3
    assert len(shrunk.deletes) == 2


def test_old_generations_and_strays_are_deleted() -> None:
    server = apply([], slicediff.plan(desired("1xL4"), [], TARGET))
    stale = copy.deepcopy(server[0])
    stale["metadata"] = {"name": "00000-gpu.dra.dev-n1-old", "uid": "u-old", "resourceVersion": "9"}
    stale["spec"]["pool"]["generation"] = 0
    stray = copy.deepcopy(server[1])
    stray["metadata"] = {"name": "0000f-gpu.dra.dev-n1-x", "uid": "u-x", "resourceVersion": "3"}
    plan = slicediff.plan(desired("1xL4"), [*server, stale, stray], TARGET)
    assert {s["metadata"]["uid"] for s in plan.deletes} == {"u-old", "u-x"}
    assert plan.updates == plan.creates == ()


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["1xL4", "2xL4", "1xA100-40GB", "2xA100-40GB,1xT4", "3xH100-80GB"]),
            st.sampled_from(list(publish.Mode)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_sequence_of_pools_converges(steps: list[tuple[str, publish.Mode]]) -> None:
    server: list[dict[str, Any]] = []
    for spec, mode in steps:
        wanted = desired(spec, mode)
        plan = slicediff.plan(wanted, server, TARGET)
        server = apply(server, plan)
        assert slicediff.plan(wanted, server, TARGET).writes == 0
        assert {s["spec"]["pool"]["generation"] for s in server} == {plan.generation}
        assert {s["spec"]["pool"]["resourceSliceCount"] for s in server} == {len(wanted)}
        assert len(server) == len(wanted)
