"""Every pool a node can publish respects the resource.k8s.io/v1 limits, and the checker bites.

Covers: a hypothesis property over random nodes (1–16 GPUs of any models, either mode, admin and
owned MIG instances, shared-device settings, node names) that the split pool has no violation and
keeps every device and counter set exactly once; and one table case per rule showing that
`limits.violations` reports a broken pool with the offending path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dra_driver import layouts
from dra_driver.backends.fake import catalog
from dra_driver.slices import building, limits, splitting, wire
from dra_driver.slices import settings as publish
from tests.dra_driver.slices import nodes

MODELS = sorted(catalog.MODELS)


@st.composite
def node_specs(
    draw: st.DrawFn,
) -> tuple[str, list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    terms = draw(
        st.lists(st.tuples(st.integers(1, 8), st.sampled_from(MODELS)), min_size=1, max_size=3)
    )
    count = sum(n for n, _ in terms)
    spec = ",".join(f"{n}x{model}" for n, model in terms)
    models = [model for n, model in terms for _ in range(n)]
    admin: list[tuple[int, int, int]] = []
    owned: list[tuple[int, int, int]] = []
    for index in range(min(count, 16)):
        profiles = catalog.MODELS[models[index]].mig_profiles
        kind = draw(st.sampled_from(["none", "admin", "owned"]))
        if not profiles or kind == "none":
            continue
        chosen: list[layouts.Slot] = []
        for slot in draw(st.permutations(layouts.candidates(profiles)))[: draw(st.integers(1, 4))]:
            if layouts.is_valid([*chosen, slot]):
                chosen.append(slot)
        (admin if kind == "admin" else owned).extend(
            (index, profile.profile_id, placement.start) for profile, placement in chosen
        )
    return spec, admin, owned


def _publish_settings() -> st.SearchStrategy[publish.PublishSettings]:
    shared = st.builds(
        publish.SharedSettings,
        enabled=st.booleans(),
        strategy=st.sampled_from(publish.SharingStrategy),
        memory_step=st.sampled_from([256, 512, 1024]).map(lambda mib: mib * 1024 * 1024),
        memory_default=st.integers(1, 8).map(lambda gib: gib * 1024**3),
        cores_default=st.integers(0, 100),
        compat_shares=st.integers(0, 16),
    )
    return st.builds(
        publish.PublishSettings,
        mode=st.sampled_from(publish.Mode),
        dynamic_mig=st.booleans(),
        shared=shared,
    )


@settings(max_examples=60, deadline=None)
@given(
    node=node_specs(),
    config=_publish_settings(),
    node_name=st.from_regex(
        r"[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?(\.[a-z0-9]{1,20}){0,3}", fullmatch=True
    ),
)
def test_every_published_pool_respects_the_api_limits(
    node: tuple[str, list[tuple[int, int, int]], list[tuple[int, int, int]]],
    config: publish.PublishSettings,
    node_name: str,
) -> None:
    spec, admin, owned = node
    groups = building.build(nodes.node(spec, admin=admin, owned=owned), config)
    pool = splitting.specs(
        splitting.split(groups),
        driver="gpu.dra.dev",
        node_name=node_name,
        pool=node_name,
        generation=3,
    )
    assert limits.violations(pool) == []
    published = [d["name"] for s in pool for d in s.get("devices", [])]
    assert published == [d["name"] for g in groups for d in g.devices]
    sets = [c["name"] for s in pool for c in s.get("sharedCounters", [])]
    assert sets == [g.counter_set["name"] for g in groups if g.counter_set is not None]


def test_sixteen_gpus_need_two_counter_slices_and_one_slice_per_gpu() -> None:
    pool = splitting.specs(
        splitting.split(building.build(nodes.node("16xH100-80GB"), publish.PublishSettings())),
        driver="gpu.dra.dev",
        node_name="n",
        pool="n",
        generation=1,
    )
    assert [len(s.get("sharedCounters", [])) for s in pool[:2]] == [8, 8]
    assert [len(s.get("devices", [])) for s in pool[2:]] == [27] * 16
    assert {s["pool"]["resourceSliceCount"] for s in pool} == {18}


def _valid_pool() -> list[wire.SliceSpec]:
    groups = building.build(nodes.node("2xA100-40GB"), publish.PublishSettings())
    return splitting.specs(
        splitting.split(groups), driver="gpu.dra.dev", node_name="n", pool="n", generation=1
    )


Mutation = Callable[[list[wire.SliceSpec]], object]


def _many_attributes(pool: list[wire.SliceSpec]) -> None:
    device = pool[1]["devices"][0]
    device["attributes"].update({f"extra{k}": {"int": k} for k in range(20)})


def _too_many_devices(pool: list[wire.SliceSpec]) -> None:
    pool[1]["devices"] += copy.deepcopy(pool[2]["devices"] * 3)


def _nine_counter_sets(pool: list[wire.SliceSpec]) -> None:
    pool[0]["sharedCounters"] += [
        {"name": f"extra-{k}", "counters": {"c": {"value": "1"}}} for k in range(7)
    ]


def _both_kinds(pool: list[wire.SliceSpec]) -> None:
    pool[0]["devices"] = [{"name": "x"}]


def _policy_without_multi(pool: list[wire.SliceSpec]) -> None:
    del pool[1]["devices"][1]["allowMultipleAllocations"]


def _default_below_min(pool: list[wire.SliceSpec]) -> None:
    pool[1]["devices"][1]["capacity"]["memory"]["requestPolicy"]["default"] = "1Mi"


def _default_off_step(pool: list[wire.SliceSpec]) -> None:
    pool[1]["devices"][1]["capacity"]["memory"]["requestPolicy"]["default"] = "300Mi"


def _count(pool: list[wire.SliceSpec]) -> None:
    pool[2]["pool"]["resourceSliceCount"] = 7


def _cost(pool: list[wire.SliceSpec]) -> None:
    pool[1]["devices"][0]["consumesCounters"][0]["counters"]["memory-slice-0"] = {"value": "2"}


def _set_attr(key: str, value: wire.DeviceAttribute) -> Mutation:
    return lambda pool: pool[1]["devices"][0]["attributes"].__setitem__(key, value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            _many_attributes, "slices[1].devices[0].attributes: 35 attributes", id="attrs"
        ),
        pytest.param(_too_many_devices, "slices[1].devices: 108 devices, at most 64", id="devices"),
        pytest.param(_nine_counter_sets, "slices[0].sharedCounters: 9 sets, at most 8", id="sets"),
        pytest.param(
            _both_kinds, "slices[0]: must hold either devices or sharedCounters", id="both"
        ),
        pytest.param(
            _policy_without_multi, "only allowed with allowMultipleAllocations", id="multi"
        ),
        pytest.param(_default_below_min, "needs min <= default <= max <= value", id="default-min"),
        pytest.param(_default_off_step, "not min + a multiple of step", id="step"),
        pytest.param(_count, "slices[2].pool.resourceSliceCount: 7, pool has 3", id="count"),
        pytest.param(_cost, "counters[memory-slice-0]: more than the set holds", id="cost"),
        pytest.param(
            _set_attr("bad name", {"int": 1}), "[bad name]: not a qualified name", id="qname"
        ),
        pytest.param(_set_attr("s", {"string": "x" * 65}), "65 characters, at most 64", id="long"),
        pytest.param(_set_attr("v", {"version": "1.02.3"}), "not a semantic version", id="semver"),
        pytest.param(_set_attr("two", {"int": 1, "bool": True}), "exactly one of int", id="two"),
        pytest.param(
            lambda pool: pool[1]["devices"][0].__setitem__("name", "GPU_0"),
            "devices[0].name: 'GPU_0' is not a DNS label",
            id="device-name",
        ),
        pytest.param(
            lambda pool: pool[2]["devices"][0].__setitem__("name", "gpu-0"),
            "slices[2].devices[0].name: 'gpu-0' also in slices[1].devices[0]",
            id="duplicate",
        ),
        pytest.param(
            lambda pool: pool[1]["devices"][0]["consumesCounters"][0].__setitem__(
                "counterSet", "nope"
            ),
            "unknown counter set 'nope'",
            id="unknown-set",
        ),
        pytest.param(
            lambda pool: pool[1]["devices"][0]["capacity"].__setitem__("memory", {"value": "4 Gi"}),
            "capacity[memory].value: '4 Gi' is not a quantity",
            id="quantity",
        ),
    ],
)
def test_the_checker_reports_each_broken_rule(mutate: Mutation, expected: str) -> None:
    pool = _valid_pool()
    assert limits.violations(pool) == []
    mutate(pool)
    found = limits.violations(pool)
    assert any(expected in line for line in found), found
