"""The fake backend behaves like NVML: MIG mode, instance create/destroy and their refusals.

Covers: create at an allowed placement, refusals (MIG off, placement not allowed for the profile,
overlap, instance cap, non-MIG GPU, mode change while instances exist), destroy and destroy of a
missing instance, compute mode and time-slice, and state shared through the JSON file between two
backend objects (a restarted or second plugin process); the file read only when it changed and
written only when something changed, and `mig_version` changing with every write by anyone;
health events (XID, ECC, a lost GPU) queued by one process and taken once by another's event
source, and a lost GPU answering again after a reset.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.fake import backend
from dra_driver.health import sources

P = hardware.Placement


def _a100(state_dir: pathlib.Path | None = None) -> backend.FakeBackend:
    return backend.FakeBackend.from_spec("1xA100-40GB,1xL4", node_name="n", state_dir=state_dir)


def test_create_and_destroy_round_trip() -> None:
    fake = _a100()
    uuid = fake.gpus()[0].uuid
    fake.set_mig_mode(uuid, enabled=True)
    created = fake.create_mig_instance(uuid, profile_id=9, placement=P(4, 4))
    assert created.profile_name == "3g.20gb"
    assert created.uuid.startswith("MIG-")
    assert fake.status(uuid).mig_instances == (created,)
    fake.destroy_mig_instance(uuid, gpu_instance_id=created.gpu_instance_id)
    assert fake.status(uuid).mig_instances == ()


@pytest.mark.parametrize(
    ("existing", "profile_id", "placement", "error", "message"),
    [
        pytest.param([], 9, P(2, 4), errors.MigError, "valid placements: 0:4, 4:4", id="bad-start"),
        pytest.param([(9, P(4, 4))], 5, P(0, 4), None, "", id="4g-beside-3g-fits"),
        pytest.param(
            [(9, P(0, 4))], 5, P(0, 4), errors.PlacementOccupiedError, "overlaps", id="4g-on-3g"
        ),
        pytest.param(
            [(14, P(2, 2))], 9, P(0, 4), errors.PlacementOccupiedError, "overlaps", id="3g-on-2g"
        ),
        pytest.param(
            [(20, P(0, 1))], 20, P(3, 1), errors.PlacementOccupiedError, "at most 1", id="one-me"
        ),
        pytest.param(
            [], 99, P(0, 1), errors.MigError, "no MIG profile with ID 99", id="no-profile"
        ),
    ],
)
def test_creation_refusals(
    existing: list[tuple[int, hardware.Placement]],
    profile_id: int,
    placement: hardware.Placement,
    error: type[Exception] | None,
    message: str,
) -> None:
    fake = _a100()
    uuid = fake.gpus()[0].uuid
    fake.set_mig_mode(uuid, enabled=True)
    for existing_id, existing_placement in existing:
        fake.create_mig_instance(uuid, profile_id=existing_id, placement=existing_placement)
    if error is None:
        fake.create_mig_instance(uuid, profile_id=profile_id, placement=placement)
        return
    with pytest.raises(error, match=message):
        fake.create_mig_instance(uuid, profile_id=profile_id, placement=placement)
    assert len(fake.status(uuid).mig_instances) == len(existing)


def test_mig_mode_rules() -> None:
    fake = _a100()
    a100, l4 = (gpu.uuid for gpu in fake.gpus())
    with pytest.raises(errors.MigModeError, match="MIG mode is off"):
        fake.create_mig_instance(a100, profile_id=19, placement=P(0, 1))
    with pytest.raises(errors.MigModeError, match="does not support MIG"):
        fake.set_mig_mode(l4, enabled=True)
    fake.set_mig_mode(a100, enabled=True)
    fake.create_mig_instance(a100, profile_id=19, placement=P(0, 1))
    with pytest.raises(errors.MigModeError, match="1 MIG instances exist"):
        fake.set_mig_mode(a100, enabled=False)
    assert fake.status(a100).mig_enabled


def test_destroying_a_missing_instance_says_so() -> None:
    fake = _a100()
    uuid = fake.gpus()[0].uuid
    with pytest.raises(errors.InstanceNotFoundError, match="no GPU instance 7"):
        fake.destroy_mig_instance(uuid, gpu_instance_id=7)


def test_unknown_gpu() -> None:
    with pytest.raises(errors.UnknownGpuError, match="GPU-nope"):
        _a100().status("GPU-nope")


def test_state_is_shared_through_the_state_file(tmp_path: pathlib.Path) -> None:
    first, second = _a100(tmp_path), _a100(tmp_path)
    uuid = first.gpus()[0].uuid
    first.set_mig_mode(uuid, enabled=True)
    created = first.create_mig_instance(uuid, profile_id=19, placement=P(6, 1))
    first.set_compute_mode(uuid, hardware.ComputeMode.EXCLUSIVE_PROCESS)
    first.set_timeslice(uuid, hardware.TimesliceInterval.LONG)
    seen = second.status(uuid)
    assert seen.mig_instances == (created,)
    assert seen.compute_mode is hardware.ComputeMode.EXCLUSIVE_PROCESS
    assert seen.timeslice is hardware.TimesliceInterval.LONG
    # A second creator gets a fresh UUID and instance ID, never a reused one.
    other = second.create_mig_instance(uuid, profile_id=19, placement=P(5, 1))
    assert other.uuid != created.uuid
    assert other.gpu_instance_id != created.gpu_instance_id


def test_state_of_gpus_no_longer_in_the_spec_is_dropped(tmp_path: pathlib.Path) -> None:
    old = backend.FakeBackend.from_spec("2xA100-40GB", node_name="n", state_dir=tmp_path)
    old.set_mig_mode(old.gpus()[1].uuid, enabled=True)
    new = backend.FakeBackend.from_spec("1xA100-40GB", node_name="n", state_dir=tmp_path)
    new.set_timeslice(new.gpus()[0].uuid, hardware.TimesliceInterval.SHORT)
    text = (tmp_path / "fake-gpus.json").read_text()
    assert old.gpus()[1].uuid not in text


def test_health_events_are_queued_in_the_state_file_and_taken_once(
    tmp_path: pathlib.Path,
) -> None:
    plugin, test = _a100(tmp_path), _a100(tmp_path)
    uuid = test.gpus()[1].uuid
    events = plugin.health_events()
    events.open()
    assert events.wait(0.01) == []
    test.inject_xid(uuid, 79, "GPU has fallen off the bus")
    test.inject_ecc(uuid, double_bit=True)
    test.inject_xid("GPU-not-here", 13)
    taken = events.wait(1.0)
    assert [(e.gpu_uuid, e.kind, e.xid, e.detail) for e in taken] == [
        (uuid, sources.EventKind.XID, 79, "GPU has fallen off the bus"),
        (uuid, sources.EventKind.DOUBLE_BIT_ECC, 0, ""),
        ("GPU-not-here", sources.EventKind.XID, 13, ""),
    ]
    assert events.wait(0.01) == []
    assert events.probe(uuid)
    test.lose_gpu(uuid)
    assert [(e.gpu_uuid, e.kind) for e in events.wait(1.0)] == [(uuid, sources.EventKind.LOST)]
    assert not events.probe(uuid)
    test.reset_gpu(uuid)
    assert events.probe(uuid)
    events.close()


def test_the_file_is_read_only_when_replaced_and_written_only_on_a_change(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin, other = _a100(tmp_path), _a100(tmp_path)
    uuid = plugin.gpus()[0].uuid
    plugin.set_compute_mode(uuid, hardware.ComputeMode.DEFAULT)  # the first write makes the file
    version = plugin.mig_version()
    loads: list[object] = []
    real_loads = json.loads

    def counted(text: str | bytes) -> object:
        loads.append(text)
        return real_loads(text)

    monkeypatch.setattr(json, "loads", counted)
    plugin.status(uuid)
    plugin.set_compute_mode(uuid, hardware.ComputeMode.DEFAULT)  # no change: no write
    assert plugin.mig_version() == version
    assert all(not isinstance(text, bytes) for text in loads)  # never the file's bytes
    other.set_mig_mode(uuid, enabled=True)
    assert plugin.mig_version() != version
    assert plugin.status(uuid).mig_enabled
    assert any(isinstance(text, bytes) for text in loads)


def test_without_a_directory_the_version_counts_changes() -> None:
    gpus = _a100()
    uuid = gpus.gpus()[0].uuid
    before = gpus.mig_version()
    gpus.set_timeslice(uuid, hardware.TimesliceInterval.DEFAULT)
    assert gpus.mig_version() == before
    gpus.set_mig_mode(uuid, enabled=True)
    assert gpus.mig_version() != before
