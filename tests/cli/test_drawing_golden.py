"""The terminal picture, checked against golden plain text (``tests/cli/golden/``).

Covers: the demo's claims (whole GPUs, a MIG slice with its slice row and what still fits,
shares with their bars, free GPUs) in the default and the wide form; shares' usage against their
limits; taints and health; colour only when asked for, and plain text then equal to the picture
without its escape codes. ``GPU_DRA_UPDATE_GOLDEN=1`` rewrites the golden files.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

from cli import drawing, mapping, occupancy
from tests.cli import cluster

GOLDEN = pathlib.Path(__file__).parent / "golden"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("GPU_DRA_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs; GPU_DRA_UPDATE_GOLDEN=1 rewrites it"


def _demo(**kwargs: object) -> occupancy.Map:
    return mapping.build(cluster.demo(), driver=cluster.DRIVER, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "wide"), [("demo.txt", False), ("demo-wide.txt", True)])
def test_the_demo_picture(name: str, wide: bool) -> None:
    _check(name, drawing.draw(_demo(), drawing.Style(wide=wide)))


def test_shares_usage_taints_and_health() -> None:
    demo = _demo()
    shared = demo.nodes[0].gpus[2]
    usage = {
        ("uid-default-fraction-pod-a-share", shared.uuid): occupancy.Usage(3 * 2**30, 10 * 2**30),
    }
    xid = {"key": "gpu.dra.dev/xid", "value": "79", "effect": "NoSchedule"}
    sick = cluster.node_slices("node-b", "2xH100-80GB", taints={"gpu-0": [xid]})
    rule = cluster.taint_rule("maintenance", key="example.com/drain", pool="node-b", device="gpu-1")
    snapshot = cluster.demo()
    snapshot = cluster.snapshot(
        snapshot.slices + sick,
        [
            *snapshot.claims,
            cluster.claim(
                "train", cluster.result("gpu-1-mig-3g40gb-4", node="node-b"), pods=("trainer",)
            ),
        ],
        [*snapshot.pods, cluster.pod("trainer", phase="Pending")],
        [rule],
    )
    found = mapping.build(
        snapshot, driver=cluster.DRIVER, usage=usage, notes=["metrics of http://x/metrics not read"]
    )
    _check("usage-and-taints.txt", drawing.draw(found, drawing.Style()))


def test_colour_only_when_asked_and_otherwise_the_same_picture() -> None:
    plain = drawing.draw(_demo(), drawing.Style())
    coloured = drawing.draw(_demo(), drawing.Style(color=True))
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_an_empty_cluster_says_so() -> None:
    empty = mapping.build(cluster.snapshot([]), driver=cluster.DRIVER)
    assert drawing.draw(empty, drawing.Style()) == "no GPUs of driver gpu.dra.dev found\n"
