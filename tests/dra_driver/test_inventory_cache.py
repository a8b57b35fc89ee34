"""`inventory.Cache`: the inventory kept between prepares, read again when the GPUs changed.

Covers: the same inventory as `discover` reads, owned and admin instances told apart by the
owned set of each call; an unchanged backend is not read again; a MIG instance created by this
process or by an admin in another one (the fake state file written) is seen at the next call; a
backend without a version (NVML) is read every time.
"""

from __future__ import annotations

import pathlib
from collections.abc import Hashable

import pytest

from dra_driver import hardware, inventory
from dra_driver.backends.fake import backend as fake

NODE = "node-a"
P = hardware.Placement


def _gpus(state_dir: pathlib.Path) -> fake.FakeBackend:
    return fake.FakeBackend.from_spec("2xA100-40GB", node_name=NODE, state_dir=state_dir)


def _statuses_read(gpus: fake.FakeBackend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = gpus.status

    def status(uuid: str) -> hardware.GpuStatus:
        reads.append(uuid)
        return real(uuid)

    monkeypatch.setattr(gpus, "status", status)
    return reads


def test_it_reads_what_discover_reads_and_only_when_the_gpus_changed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin, admin = _gpus(tmp_path), _gpus(tmp_path)
    uuid = plugin.gpus()[0].uuid
    plugin.set_mig_mode(uuid, enabled=True)
    ours = plugin.create_mig_instance(uuid, profile_id=19, placement=P(6, 1))
    cache = inventory.Cache(plugin, node_name=NODE)
    reads = _statuses_read(plugin, monkeypatch)
    first = cache.current(owned_mig_uuids={ours.uuid})
    assert first == inventory.discover(plugin, node_name=NODE, owned_mig_uuids={ours.uuid})
    assert first.gpus[0].owned_instances == (ours,)
    assert cache.current(owned_mig_uuids={ours.uuid}) is first
    assert cache.current().gpus[0].admin_instances == (ours,)  # nobody owns it any more
    reads.clear()
    cache.current(owned_mig_uuids={ours.uuid})
    assert reads == []
    theirs = admin.create_mig_instance(uuid, profile_id=19, placement=P(5, 1))
    after = cache.current(owned_mig_uuids={ours.uuid})
    assert len(reads) == 2
    assert after.gpus[0].admin_instances == (theirs,)


class _NoVersion:
    """A backend like NVML: no version, so every call reads the GPUs."""

    def __init__(self, gpus: fake.FakeBackend) -> None:
        self.gpus = gpus.gpus
        self.status = gpus.status

    def mig_version(self) -> Hashable | None:
        return None


def test_a_backend_without_a_version_is_read_every_time(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = _gpus(tmp_path)
    reads = _statuses_read(gpus, monkeypatch)
    cache = inventory.Cache(_NoVersion(gpus), node_name=NODE)  # type: ignore[arg-type]
    cache.current()
    cache.current()
    assert len(reads) == 4
