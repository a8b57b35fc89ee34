"""The GPU-machine self-check, run here against the fake NVML so that it works the first time.

Covers: the JSON report (GPUs, status, probes), the MIG round trip with ``--enable-mig`` (MIG on,
create, listed, destroy, gone, destroy again is not-found, MIG off), a round trip refused on a GPU
without MIG, and exit status 2 when the backend cannot open.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest
import structlog

from dra_driver.backends.nvml import selfcheck
from tests.dra_driver.backends.nvml import conftest, fakenvml


def _run(
    capsys: pytest.CaptureFixture[str], sysfs_root: pathlib.Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    with structlog.testing.capture_logs():  # keeps log lines out of stdout, as stderr would
        status = selfcheck.main(["--sysfs-root", str(sysfs_root), *extra])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return status, report


@pytest.mark.usefixtures("fake_nvml")
def test_report(capsys: pytest.CaptureFixture[str], sysfs_root: pathlib.Path) -> None:
    status, report = _run(capsys, sysfs_root)
    assert status == 0
    assert [gpu["uuid"] for gpu in report["gpus"]] == [conftest.A100_UUID, conftest.L4_UUID]
    assert report["gpus"][0]["mig_profiles"][0]["placements"][6] == {"start": 6, "size": 1}
    assert report["status"][1]["compute_mode"] == "DEFAULT"
    a100_probe, l4_probe = report["probes"]
    assert (a100_probe["attributes_multiprocessors"], a100_probe["gpu_cores"]) == (108, 6912)
    assert a100_probe["gpu_instance_profiles"]["7"] == {"id": 20, "name": "MIG 1g.5gb+me"}
    assert l4_probe["mig_mode"] == "NVML_ERROR_NOT_SUPPORTED"


def test_mig_roundtrip_with_enable_mig(
    capsys: pytest.CaptureFixture[str],
    sysfs_root: pathlib.Path,
    fake_nvml: fakenvml.FakeNvml,
) -> None:
    status, report = _run(capsys, sysfs_root, "--mig-roundtrip", conftest.A100_UUID, "--enable-mig")
    steps = [(step["step"], step["ok"]) for step in report["roundtrip"]]
    assert steps == [
        ("enable-mig", True),
        ("create", True),
        ("listed", True),
        ("destroy", True),
        ("gone", True),
        ("destroy-again-not-found", True),
        ("disable-mig", True),
    ]
    assert report["roundtrip"][1]["result"]["profile_name"] == "1g.5gb"
    assert status == 0
    assert fake_nvml.gpus[0].mig_current == 0
    assert fake_nvml.gpus[0].gpu_instances == {}


@pytest.mark.usefixtures("fake_nvml")
def test_mig_roundtrip_on_a_gpu_without_mig(
    capsys: pytest.CaptureFixture[str], sysfs_root: pathlib.Path
) -> None:
    status, report = _run(capsys, sysfs_root, "--mig-roundtrip", conftest.L4_UUID)
    assert status == 1
    assert report["roundtrip"][0]["step"] == "find-profile"
    assert "no MIG profiles" in report["roundtrip"][0]["error"]


def test_backend_unavailable(
    capsys: pytest.CaptureFixture[str], sysfs_root: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    status, report = _run(capsys, sysfs_root)
    assert status == 2
    assert "pynvml" in report["error"]
