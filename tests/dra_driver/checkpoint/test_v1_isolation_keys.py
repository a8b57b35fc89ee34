"""How ``v1`` writes a device's isolation: each typed part as the string keys released builds wrote.

The keys and values below are what nodes' checkpoints hold today; renaming a field of
`model.Isolation` must not rename them (that would be a new schema version).

Covers: every part (MIG origin, time slice, quota, MPS attachment with and without shm and
exclusive mode) encodes to exactly its legacy entries and decodes back from them; several parts
together; keys this build does not know are kept and written back; a known key with a bad value,
or half of a part, is a `errors.SchemaError` naming the field; unknown entries that collide with a
part's key are refused at encoding.
"""

from __future__ import annotations

from typing import Any

import pytest

from dra_driver import hardware
from dra_driver.checkpoint import errors, model, v1

UID = model.ClaimUID("0b5e4c6e-0000-4000-8000-00000000000a")
WHERE = f"data.claims['{UID}'].devices[0].isolation"
PIPE = "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-2/pipe"
SHM = "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-2/shm"

LEGACY = [
    pytest.param(model.Isolation(), {}, id="nothing"),
    pytest.param(model.Isolation(mig=model.MigOrigin.STATIC), {"mig": "static"}, id="mig-static"),
    pytest.param(
        model.Isolation(mig=model.MigOrigin.DYNAMIC), {"mig": "dynamic"}, id="mig-dynamic"
    ),
    pytest.param(
        model.Isolation(time_slice=hardware.TimesliceInterval.LONG),
        {"timeslice": "LONG"},
        id="time-slice",
    ),
    pytest.param(
        model.Isolation(quota=model.Quota(memory_bytes=4 << 30, cores=25)),
        {"memoryLimit": "4294967296", "cores": "25"},
        id="quota",
    ),
    pytest.param(
        model.Isolation(
            mps=model.MpsAttachment(daemon="gpu-2", pipe_dir=PIPE, shm_dir=SHM, exclusive=True)
        ),
        {"mpsDaemon": "gpu-2", "mpsPipe": PIPE, "mpsShm": SHM, "mpsExclusive": "true"},
        id="mps-exclusive",
    ),
    pytest.param(
        model.Isolation(
            mps=model.MpsAttachment(daemon="c-1", pipe_dir=PIPE, shm_dir=None, exclusive=False)
        ),
        {"mpsDaemon": "c-1", "mpsPipe": PIPE},
        id="mps-before-shm",
    ),
    pytest.param(
        model.Isolation(
            quota=model.Quota(memory_bytes=1024, cores=0),
            mps=model.MpsAttachment(daemon="gpu-2", pipe_dir=PIPE, shm_dir=SHM, exclusive=True),
            unknown={"quotaFile": "/q.json"},
        ),
        {
            "memoryLimit": "1024",
            "cores": "0",
            "mpsDaemon": "gpu-2",
            "mpsPipe": PIPE,
            "mpsShm": SHM,
            "mpsExclusive": "true",
            "quotaFile": "/q.json",
        },
        id="share-with-mps-and-an-unknown-key",
    ),
    pytest.param(
        model.Isolation(unknown={"timeSlice": "Long"}), {"timeSlice": "Long"}, id="unknown-key"
    ),
]


def _data(isolation: Any) -> Any:
    device = {
        "requestNames": ["gpu"],
        "pool": "node-a",
        "device": "gpu-0",
        "cdiIds": [],
        "gpuUuid": "GPU-0",
        "isolation": isolation,
    }
    claim = {"namespace": "ns", "name": "c", "state": "PrepareCompleted", "devices": [device]}
    return {"bootId": "boot", "claims": {UID: claim}}


def _checkpoint(isolation: model.Isolation) -> model.Checkpoint:
    device = model.PreparedDevice(
        request_names=("gpu",),
        pool="node-a",
        device="gpu-0",
        share_id=None,
        cdi_ids=(),
        gpu_uuid="GPU-0",
        isolation=isolation,
    )
    claim = model.PreparedClaim(
        uid=UID, namespace="ns", name="c", state=model.PrepareState.COMPLETED, devices=(device,)
    )
    return model.Checkpoint(boot_id="boot").with_claim(claim)


@pytest.mark.parametrize(("isolation", "entries"), LEGACY)
def test_each_part_is_written_as_its_legacy_entries(
    isolation: model.Isolation, entries: dict[str, str]
) -> None:
    written = v1.encode(_checkpoint(isolation))["claims"][UID]["devices"][0]["isolation"]
    assert written == entries
    assert list(written) == sorted(written)  # canonical order, as the checksum covers it


@pytest.mark.parametrize(("isolation", "entries"), LEGACY)
def test_each_part_is_read_from_its_legacy_entries(
    isolation: model.Isolation, entries: dict[str, str]
) -> None:
    assert v1.decode(_data(entries)) == _checkpoint(isolation)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        pytest.param({"mig": "sideways"}, ".mig: unknown MIG origin 'sideways'", id="mig"),
        pytest.param({"timeslice": "Long"}, ".timeslice: unknown interval 'Long'", id="interval"),
        pytest.param(
            {"memoryLimit": "4Gi", "cores": "1"},
            ".memoryLimit: expected a decimal integer, got '4Gi'",
            id="limit-not-bytes",
        ),
        pytest.param(
            {"memoryLimit": "1", "cores": "-1"},
            ".cores: expected a decimal integer, got '-1'",
            id="cores-negative",
        ),
        pytest.param(
            {"memoryLimit": "9" * 5000, "cores": "1"},
            ".memoryLimit: expected a decimal integer",
            id="limit-too-long",
        ),
        pytest.param({"memoryLimit": "1"}, ": memoryLimit without cores", id="no-cores"),
        pytest.param({"cores": "1"}, ": cores without memoryLimit", id="no-limit"),
        pytest.param({"mpsDaemon": "gpu-0"}, ": mpsDaemon without mpsPipe", id="no-pipe"),
        pytest.param({"mpsPipe": PIPE}, ": mpsPipe without mpsDaemon", id="no-daemon"),
        pytest.param({"mpsShm": SHM}, ": mpsShm without mpsDaemon", id="shm-alone"),
        pytest.param(
            {"mpsDaemon": "gpu-0", "mpsPipe": PIPE, "mpsExclusive": "yes"},
            ".mpsExclusive: expected 'true', got 'yes'",
            id="exclusive-not-true",
        ),
    ],
)
def test_a_bad_entry_is_a_schema_error_naming_it(entries: dict[str, str], message: str) -> None:
    with pytest.raises(errors.SchemaError) as caught:
        v1.decode(_data(entries))
    assert str(caught.value).startswith(WHERE + message)


def test_an_unknown_entry_may_not_shadow_a_part() -> None:
    isolation = model.Isolation(mig=model.MigOrigin.STATIC, unknown={"mig": "dynamic"})
    with pytest.raises(ValueError, match="mig"):
        v1.encode(_checkpoint(isolation))
