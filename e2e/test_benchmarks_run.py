"""Every benchmark runs, with tiny parameters, so that none can rot unnoticed.

Covers: ``bench/prepare.py --tiny --profile --peer`` (the plugin process against the local
kube-apiserver, in both checkpoint layouts, the two instrumented runs, and the upstream example
driver's plugin interleaved with ours: built by ``hack/build-example-driver.sh`` the first time),
``bench/publish.py --nodes 2`` and ``bench/quota.py`` with one short round each exit 0 and print
one JSON object with their headline keys. No figure is checked: the machine running CI is not
the one the README's figures come from.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def prepared(bin_dir: pathlib.Path) -> dict[str, Any]:
    """One tiny run of the prepare benchmark with every option (the peer built the first time)."""
    return _run("prepare.py", "--tiny", "--profile", "--peer", timeout=600)


def test_the_prepare_benchmark_runs(prepared: dict[str, Any]) -> None:
    result = prepared
    for key in (
        "prepare_p50_ms",
        "prepare_p99_ms",
        "unprepare_p50_ms",
        "prepare_p50_ms_1000_held",
        "share_prepare_p99_ms",
        "peak_rss_mb",
    ):
        assert isinstance(result[key], float), key
    assert set(result["kinds"]) == {"gpu", "mig", "share", "mps"}
    assert set(result["batches"]) == {"share_x8", "share_x64"}
    assert result["checkpoint_layout"] == "v2"
    assert isinstance(result["prepare_p50_ms_1000_held_v1"], float)  # the other layout
    for layout in ("v1", "v2"):  # two plugins of ours, interleaved: one holding claims, one not
        assert isinstance(result[f"held_over_empty_prepare_p50_{layout}"], float), layout
        assert isinstance(result[f"held_over_empty_unprepare_p50_{layout}"], float), layout
    phases = result["profile"]["phases"]["NodePrepareResources:gpu:1"]["per_call_count_ms_maxms"]
    assert {"rpc", "claim GET", "checkpoint.save"} <= set(phases)
    cprofiled = result["profile"]["cprofile"]["NodePrepareResources:gpu:1"]
    assert cprofiled["cprofile_top_tottime_ms_per_call"]


def test_the_prepare_benchmark_compares_with_the_example_driver(prepared: dict[str, Any]) -> None:
    result = prepared
    peer = result["peer"]
    assert peer["driver"].startswith("kubernetes-sigs/dra-example-driver v0.4.0")
    for key in ("prepare_p50_ms", "prepare_p99_ms", "unprepare_p50_ms", "peak_rss_mb"):
        assert isinstance(peer[key], float), key
    assert isinstance(peer["plugin_cpu_ms_per_cycle"], float)  # 0.0 below the clock tick
    assert peer["gpu"]["calls"] == result["kinds"]["gpu"]["calls"] == 3  # interleaved, as many
    for key in ("prepare_p50", "unprepare_p50", "peak_rss"):
        assert isinstance(result[f"ours_over_peer_{key}"], float), key
    assert "ours_over_peer_cpu" in result  # null where the peer's CPU is below the clock tick


def test_the_publish_benchmark_runs(bin_dir: pathlib.Path) -> None:
    result = _run("publish.py", "--nodes=2", timeout=300)
    assert result["nodes"] == 2
    assert result["republish_writes"] == 0  # not a timing: the controller's own rule


@pytest.mark.skipif(os.geteuid() != 0, reason="the quota benchmark mounts a claim dir (root)")
def test_the_quota_benchmark_runs() -> None:
    args = ("--rounds=1", "--batches=1", "--pairs=100", "--samples=100")
    result = _run("quota.py", *args, timeout=300)
    assert "added_ns_median" in result
