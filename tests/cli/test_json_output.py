"""``-o json``: the documented, stable schema of the occupancy map.

Covers: the document's header and every key of every level (a renamed or dropped key fails
here, and must be documented in docs/occupancy.md as a new field instead); the demo's facts as
JSON; absent parts are null; the schema's keys are exactly those docs/occupancy.md lists.
"""

from __future__ import annotations

import json
import pathlib

from cli import encoding, mapping
from tests.cli import cluster

HOLDER = {"namespace", "claim", "claimUID", "request", "shareID", "adminAccess", "pods"}
GPU = {
    "index", "uuid", "product", "memoryBytes", "multiprocessors", "serving", "health", "whole",
    "mig", "shares", "taints",
}  # fmt: skip
SLOT = {"device", "profile", "start", "size", "memorySlices", "static"}
SHARES = {
    "devices", "strategy", "memoryBytes", "cores", "memoryAllocatedBytes", "coresAllocated",
    "accepting", "shares",
}  # fmt: skip


def _demo() -> dict:  # type: ignore[type-arg]
    found = mapping.build(cluster.demo(), driver=cluster.DRIVER)
    document: dict = json.loads(json.dumps(encoding.encode(found)))  # type: ignore[type-arg]
    return document


def test_the_schema_keys_are_stable() -> None:
    document = _demo()
    assert set(document) == {"apiVersion", "kind", "driver", "nodes", "notes"}
    assert (document["apiVersion"], document["kind"]) == ("gpu.dra.dev/v1alpha1", "OccupancyMap")
    (node,) = document["nodes"]
    assert set(node) == {"name", "pool", "gpus"}
    gpus = node["gpus"]
    assert all(set(g) == GPU for g in gpus)
    assert set(gpus[0]["whole"]) == {"device", "fits", "holders"}
    assert set(gpus[0]["whole"]["holders"][0]) == HOLDER
    assert set(gpus[0]["whole"]["holders"][0]["pods"][0]) == {"name", "phase"}
    assert set(gpus[1]["mig"]) == {"slices", "freeSlices", "held", "fits"}
    assert set(gpus[1]["mig"]["held"][0]) == SLOT | {"holders"}
    assert all(set(s) == SLOT for s in gpus[1]["mig"]["fits"])
    assert set(gpus[2]["shares"]) == SHARES
    assert set(gpus[2]["shares"]["shares"][0]) == {
        "device",
        "memoryBytes",
        "cores",
        "holder",
        "usage",
    }
    assert set(gpus[0]["health"]) == {"status", "reason"}


def test_the_demo_as_json() -> None:
    gpus = _demo()["nodes"][0]["gpus"]
    assert [g["serving"] for g in gpus] == ["whole", "mig", "shares", "whole"] + ["free"] * 4
    assert gpus[0]["whole"]["holders"][0]["pods"] == [{"name": "gpu-pod", "phase": "Running"}]
    mig = gpus[1]["mig"]
    assert mig["freeSlices"] == [0, 1, 2, 3, 4, 5, 7]
    assert [(s["device"], s["memorySlices"]) for s in mig["held"]] == [("gpu-1-mig-1g5gb-6", [6])]
    shares = gpus[2]["shares"]
    assert (shares["memoryBytes"], shares["memoryAllocatedBytes"]) == (40 * 2**30, 20 * 2**30)
    assert (shares["cores"], shares["coresAllocated"]) == (100, 50)
    assert [s["usage"] for s in shares["shares"]] == [None, None]
    assert gpus[4]["whole"]["fits"] is True
    assert gpus[4]["whole"]["holders"] == []
    assert gpus[0]["shares"]["shares"] == []
    assert gpus[0]["taints"] == []


def test_every_key_is_documented() -> None:
    docs = (pathlib.Path(__file__).parents[2] / "docs" / "occupancy.md").read_text()
    for key in (
        HOLDER | GPU | SLOT | SHARES | {"freeSlices", "held", "fits", "usedBytes", "limitBytes"}
    ):
        assert f"`{key}`" in docs, key
