"""`python -m dra_driver.inventory`: prints the node's ResourceSlices as YAML a person can read.

Covers: the default full-mode output for 8 A100s (slices, devices, counter sets, per-GPU summary),
compatibility mode with fixed shares, that the output passes the API limits, and a bad spec.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from dra_driver.inventory import __main__ as cli
from dra_driver.slices import limits


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[Any], str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, list(yaml.safe_load_all(out)) if out else [], err


def test_eight_a100s_in_full_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, slices, err = _run(capsys, "--gpus", "fake:8xA100-40GB", "--node-name", "gpu-node-1")
    assert code == 0
    assert [s["kind"] for s in slices] == ["ResourceSlice"] * 9
    specs = [s["spec"] for s in slices]
    assert len(specs[0]["sharedCounters"]) == 8
    assert [len(s["devices"]) for s in specs[1:]] == [27] * 8
    assert specs[3]["devices"][0]["name"] == "gpu-2"
    assert {s["pool"]["name"] for s in specs} == {"gpu-node-1"}
    assert limits.violations(specs) == []
    assert err.splitlines()[0] == "# gpu 0: 1 gpu, 25 mig, 1 shared"


def test_compat_mode_with_fixed_shares(capsys: pytest.CaptureFixture[str]) -> None:
    code, slices, _ = _run(
        capsys, "--gpus", "fake:2xL4", "--mode", "compat", "--compat-shares", "2"
    )
    assert code == 0
    names = [d["name"] for s in slices for d in s["spec"]["devices"]]
    assert names == ["gpu-0-share-0", "gpu-0-share-1", "gpu-1-share-0", "gpu-1-share-1"]
    assert all("sharedCounters" not in s["spec"] for s in slices)


def test_a_bad_spec_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, slices, err = _run(capsys, "--gpus", "fake:2xB300")
    assert code == 2
    assert slices == []
    assert "unknown model 'B300'; known models: A100-40GB" in err
