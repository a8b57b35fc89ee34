"""Every spec we write is one the CDI Go library (v1.1.1) would load, at the lowest version it can.

Checked with `cdirules`, an independent transcription of the library's rules. Covers: the written
file of a claim with every kind of edit passes; random specs pass (hypothesis); ``0.5.0`` is the
lowest version for our specs (a claim UID starting with a digit, or a device node's ``hostPath``,
needs it) and never too low; the checker itself rejects what the library rejects (so that a pass
means something).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dra_driver.cdi import naming, spec, writing
from tests.dra_driver.cdi import cdirules, test_rendering

paths = st.from_regex(r"/[a-z0-9_./-]{1,20}", fullmatch=True)
env_entries = st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}=[ -~]{0,12}", fullmatch=True)
device_nodes = st.builds(
    spec.DeviceNode,
    path=paths,
    host_path=st.none() | paths,
    type=st.none() | st.sampled_from("bcup"),
    major=st.none() | st.integers(0, 511),
    minor=st.none() | st.integers(0, 1 << 20),
    permissions=st.none() | st.sampled_from(["r", "rw", "rwm", "m", "none"]),
)
mounts = st.builds(
    spec.Mount,
    host_path=paths,
    container_path=paths,
    options=st.lists(st.sampled_from(["ro", "rw", "bind", "nosuid"]), max_size=3).map(tuple),
    type=st.none() | st.sampled_from(["bind", "tmpfs"]),
)
edits = st.builds(
    spec.ContainerEdits,
    env=st.lists(env_entries, max_size=3).map(tuple),
    device_nodes=st.lists(device_nodes, max_size=3).map(tuple),
    mounts=st.lists(mounts, max_size=2).map(tuple),
)
claim_uids = st.uuids().map(str)
pool_devices = st.from_regex(
    r"gpu-[0-9]{1,2}(-mig-[1-7]g[0-9]{1,3}gb-[0-7]|-shared)?", fullmatch=True
)


@st.composite
def claims(draw: st.DrawFn) -> tuple[str, list[spec.Device], spec.ContainerEdits]:
    uid = draw(claim_uids)
    keys = draw(
        st.lists(
            st.tuples(pool_devices, st.none() | st.uuids().map(str)),
            min_size=1,
            max_size=4,
            unique_by=lambda key: naming.device_name(uid, key[0], key[1]),
        )
    )
    devices = [
        spec.Device(
            name=naming.device_name(uid, device, share_id),
            edits=draw(edits.filter(lambda e: not e.is_empty())),
        )
        for device, share_id in keys
    ]
    return uid, devices, draw(edits)


def test_the_written_file_passes(tmp_path: pathlib.Path) -> None:
    devices = [test_rendering.FULL_GPU, test_rendering.MIG_DEVICE, test_rendering.SHARE]
    writing.write_claim_spec(tmp_path, test_rendering.UID, devices, test_rendering.COMMON)
    content = json.loads((tmp_path / naming.spec_file_name(test_rendering.UID)).read_text())
    assert cdirules.problems(content) == []
    assert cdirules.minimum_version(content) == spec.CDI_VERSION


@given(claims())
def test_random_specs_pass(claim: tuple[str, list[spec.Device], spec.ContainerEdits]) -> None:
    rendered = json.loads(json.dumps(spec.render(*claim)))
    assert cdirules.problems(rendered) == []


@pytest.mark.parametrize(
    ("uid", "host_path", "minimum"),
    [
        pytest.param("4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7", None, "0.5.0", id="uid-digit"),
        pytest.param("c0ffee00-1234-4abc-8def-0123456789ab", "/dev/x", "0.5.0", id="host-path"),
        pytest.param("c0ffee00-1234-4abc-8def-0123456789ab", None, "0.3.0", id="neither"),
    ],
)
def test_0_5_0_is_the_lowest_version_our_features_allow(
    uid: str, host_path: str | None, minimum: str
) -> None:
    node = spec.DeviceNode(path="/dev/x", host_path=host_path)
    device = spec.Device(
        naming.device_name(uid, "gpu-0"), spec.ContainerEdits(device_nodes=(node,))
    )
    rendered = json.loads(json.dumps(spec.render(uid, [device])))
    assert cdirules.minimum_version(rendered) == minimum
    assert rendered["cdiVersion"] == spec.CDI_VERSION


def _valid() -> dict[str, Any]:
    return {
        "cdiVersion": "0.5.0",
        "kind": "k8s.gpu.dra.dev/claim",
        "devices": [{"name": "0abc-gpu-0", "containerEdits": {"env": ["A=1"]}}],
    }


def _changed(path: str, value: Any) -> dict[str, Any]:
    spec_json = _valid()
    *parents, last = path.split(".")
    target: Any = spec_json
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    return spec_json


@pytest.mark.parametrize(
    ("spec_json", "problem"),
    [
        pytest.param(_changed("cdiVersion", "0.4.0"), "must be at least v0.5.0", id="too-low"),
        pytest.param(_changed("cdiVersion", "0.9.0"), "invalid version", id="unknown-version"),
        pytest.param(_changed("kind", "k8s.gpu.dra.dev"), "invalid kind", id="no-class"),
        pytest.param(_changed("devices", []), "no devices", id="no-devices"),
        pytest.param(_changed("devices.0.name", "a/b"), "invalid device name", id="bad-name"),
        pytest.param(_changed("devices.0.containerEdits", {}), "empty device edits", id="empty"),
        pytest.param(_changed("devices.0.extra", 1), "unknown field 'extra'", id="unknown-field"),
        pytest.param(
            _changed("devices.0.containerEdits", {"deviceNodes": [{"path": "/d", "host": "/h"}]}),
            "unknown field 'host'",
            id="unknown-node-field",
        ),
    ],
)
def test_the_checker_rejects_what_the_library_rejects(
    spec_json: dict[str, Any], problem: str
) -> None:
    assert cdirules.problems(_valid()) == []
    assert any(problem in found for found in cdirules.problems(spec_json))
