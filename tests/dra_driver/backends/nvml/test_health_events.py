"""NVML's health events, read through an event set of the fake driver.

Covers: each GPU is registered for the XID and ECC events it supports; an XID event comes back
for its GPU's UUID with the code (a MIG instance's with its IDs in the detail), ECC events by
kind; no event is an empty wait; GPU_IS_LOST names the GPUs that are lost (probed) and makes the
set be opened again; a GPU lost before opening is reported lost at once; a GPU without events is
left out, and a node where no GPU has events is unsupported; other NVML errors are source errors;
probing tells a lost GPU from one that answers, again after a reset; closing frees the set.
"""

from __future__ import annotations

import pytest

from dra_driver.backends.nvml import backend
from dra_driver.health import sources
from tests.dra_driver.backends.nvml import fakegpus, fakenvml
from tests.dra_driver.backends.nvml.conftest import A100_UUID, L4_UUID

XID, DBE, SBE = 8, 2, 1


@pytest.fixture
def source(nvml_backend: backend.NvmlBackend) -> sources.EventSource:
    return nvml_backend.health_events()


def test_every_gpu_is_registered_and_the_set_freed_on_close(
    source: sources.EventSource, fake_nvml: fakenvml.FakeNvml
) -> None:
    source.open()
    ((registered),) = fake_nvml.event_sets.values()
    assert [gpu.uuid for gpu in registered] == [A100_UUID, L4_UUID]
    source.close()
    source.close()
    assert fake_nvml.event_sets == {}


def test_events_come_back_by_gpu_and_kind(
    source: sources.EventSource, fake_nvml: fakenvml.FakeNvml, fake_gpus: list[fakegpus.Gpu]
) -> None:
    source.open()
    fake_nvml.emit(fake_gpus[1], XID, 79)
    fake_nvml.emit(fake_gpus[0], XID, 31, gi=2)
    fake_nvml.emit(fake_gpus[0], DBE)
    fake_nvml.emit(fake_gpus[0], SBE)
    seen = [source.wait(0.01) for _ in range(5)]
    assert [(e.gpu_uuid, e.kind, e.xid) for batch in seen for e in batch] == [
        (L4_UUID, sources.EventKind.XID, 79),
        (A100_UUID, sources.EventKind.XID, 31),
        (A100_UUID, sources.EventKind.DOUBLE_BIT_ECC, 0),
        (A100_UUID, sources.EventKind.SINGLE_BIT_ECC, 0),
    ]
    assert seen[-1] == []
    assert seen[1][0].detail == "MIG GPU instance 2, compute instance 2"
    assert seen[0][0].detail == ""


def test_a_lost_gpu_is_named_by_probing_and_the_set_opened_again(
    source: sources.EventSource, fake_nvml: fakenvml.FakeNvml, fake_gpus: list[fakegpus.Gpu]
) -> None:
    source.open()
    fake_gpus[1].lost = True
    (event,) = source.wait(0.01)
    assert (event.gpu_uuid, event.kind) == (L4_UUID, sources.EventKind.LOST)
    with pytest.raises(sources.SourceError, match="opening it again"):
        source.wait(0.01)
    source.close()
    source.open()  # the lost GPU cannot register: reported lost again, the other one watched
    assert [(e.gpu_uuid, e.kind) for e in source.wait(0.01)] == [(L4_UUID, sources.EventKind.LOST)]
    assert source.wait(0.01) == []
    assert not source.probe(L4_UUID)
    assert source.probe(A100_UUID)
    fake_gpus[1].lost = False  # a GPU reset
    assert source.probe(L4_UUID)


def test_gpus_without_events_are_left_out_and_none_at_all_is_unsupported(
    source: sources.EventSource, fake_nvml: fakenvml.FakeNvml, fake_gpus: list[fakegpus.Gpu]
) -> None:
    fake_gpus[0].event_types = 0
    source.open()
    ((registered),) = fake_nvml.event_sets.values()
    assert [gpu.uuid for gpu in registered] == [L4_UUID]
    source.close()
    fake_gpus[1].event_types = 0
    with pytest.raises(sources.UnsupportedError):
        source.open()
    assert fake_nvml.event_sets == {}


def test_other_nvml_errors_are_source_errors(
    source: sources.EventSource, fake_nvml: fakenvml.FakeNvml
) -> None:
    fake_nvml.fail("nvmlEventSetCreate", "UNKNOWN")
    with pytest.raises(sources.SourceError, match="NVML_ERROR_UNKNOWN"):
        source.open()
    source.open()
    fake_nvml.fail("nvmlEventSetWait_v2", "UNKNOWN")
    with pytest.raises(sources.SourceError, match="wait for events"):
        source.wait(0.01)
    fake_nvml.fail("nvmlDeviceRegisterEvents", "NO_PERMISSION")
    source.close()
    with pytest.raises(sources.SourceError, match="register GPU"):
        source.open()
    assert fake_nvml.event_sets == {}
