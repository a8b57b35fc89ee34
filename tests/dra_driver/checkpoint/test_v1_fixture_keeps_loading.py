"""Checkpoints written by released versions keep loading, forever.

The literal below is a ``v1`` file as the first release wrote it. Do not edit it: if a change of the
code breaks this test, the change would strand every node's prepared claims on upgrade. A new
format is a new version beside ``v1`` (see `dra_driver.checkpoint.scheme`), with its own fixture.

Covers: the fixture loads to the expected claims (a full GPU with a time-slice, a MIG instance
created at prepare, a started share with consumed capacity and isolation state, an admin-access
claim); while ``v1`` is the newest, the writer produces exactly these bytes; unknown keys are
ignored and optional fields may be missing (our own state is read leniently); a field of the wrong
type is refused with its path.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from dra_driver.checkpoint import errors, model, scheme, store, v1

FIXTURE_V1 = """\
{
  "kind": "GpuDraCheckpoint",
  "version": "v1",
  "checksum": "d56b9e742606471c9eaa8ae535d7fc304024e4bbbdcd7c8df289a85d33e9d653",
  "data": {
    "bootId": "3f0d9c52-7c1e-4b8a-9f3e-5d2a6b1c0e47",
    "claims": {
      "4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7": {
        "namespace": "team-a",
        "name": "training",
        "state": "PrepareCompleted",
        "devices": [
          {
            "requestNames": [
              "gpu"
            ],
            "pool": "node-a",
            "device": "gpu-0",
            "shareId": null,
            "cdiIds": [
              "k8s.gpu.dra.dev/claim=4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7-gpu-0"
            ],
            "gpuUuid": "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e",
            "migUuid": null,
            "migGpuInstanceId": null,
            "adminAccess": false,
            "consumedCapacity": {},
            "isolation": {
              "timeSlice": "Long"
            }
          },
          {
            "requestNames": [
              "mig"
            ],
            "pool": "node-a",
            "device": "gpu-1-mig-1g5gb-3",
            "shareId": null,
            "cdiIds": [
              "k8s.gpu.dra.dev/claim=4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7-gpu-1-mig-1g5gb-3"
            ],
            "gpuUuid": "GPU-5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
            "migUuid": "MIG-0f1e2d3c-4b5a-5968-8776-a5b4c3d2e1f0",
            "migGpuInstanceId": 9,
            "adminAccess": false,
            "consumedCapacity": {},
            "isolation": {}
          }
        ]
      },
      "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a": {
        "namespace": "team-b",
        "name": "inference",
        "state": "PrepareStarted",
        "devices": [
          {
            "requestNames": [
              "small"
            ],
            "pool": "node-a",
            "device": "gpu-2-shared",
            "shareId": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "cdiIds": [
              "k8s.gpu.dra.dev/claim=9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a-gpu-2-shared-a1b2c3d4"
            ],
            "gpuUuid": "GPU-2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
            "migUuid": null,
            "migGpuInstanceId": null,
            "adminAccess": false,
            "consumedCapacity": {
              "cores": "25",
              "memory": "4Gi"
            },
            "isolation": {
              "mpsPipeDir": "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-2/pipe",
              "quotaFile": "/var/lib/kubelet/plugins/gpu.dra.dev/quota/9d8c7b6a.json"
            }
          }
        ]
      },
      "c0ffee00-1234-4abc-8def-0123456789ab": {
        "namespace": "monitoring",
        "name": "dcgm",
        "state": "PrepareCompleted",
        "devices": [
          {
            "requestNames": [
              "gpus"
            ],
            "pool": "node-a",
            "device": "gpu-0",
            "shareId": null,
            "cdiIds": [
              "k8s.gpu.dra.dev/claim=c0ffee00-1234-4abc-8def-0123456789ab-gpu-0"
            ],
            "gpuUuid": "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e",
            "migUuid": null,
            "migGpuInstanceId": null,
            "adminAccess": true,
            "consumedCapacity": {},
            "isolation": {}
          }
        ]
      }
    }
  }
}
"""

BOOT = "3f0d9c52-7c1e-4b8a-9f3e-5d2a6b1c0e47"
TRAINING = model.ClaimUID("4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7")
INFERENCE = model.ClaimUID("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")
MONITORING = model.ClaimUID("c0ffee00-1234-4abc-8def-0123456789ab")
GPU_0 = "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e"
PLUGIN_DIR = "/var/lib/kubelet/plugins/gpu.dra.dev"

EXPECTED = model.Checkpoint(
    boot_id=BOOT,
    claims={
        TRAINING: model.PreparedClaim(
            uid=TRAINING,
            namespace="team-a",
            name="training",
            state=model.PrepareState.COMPLETED,
            devices=(
                model.PreparedDevice(
                    request_names=("gpu",),
                    pool="node-a",
                    device="gpu-0",
                    share_id=None,
                    cdi_ids=(f"k8s.gpu.dra.dev/claim={TRAINING}-gpu-0",),
                    gpu_uuid=GPU_0,
                    isolation=model.Isolation(unknown={"timeSlice": "Long"}),
                ),
                model.PreparedDevice(
                    request_names=("mig",),
                    pool="node-a",
                    device="gpu-1-mig-1g5gb-3",
                    share_id=None,
                    cdi_ids=(f"k8s.gpu.dra.dev/claim={TRAINING}-gpu-1-mig-1g5gb-3",),
                    gpu_uuid="GPU-5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
                    mig_uuid="MIG-0f1e2d3c-4b5a-5968-8776-a5b4c3d2e1f0",
                    mig_gpu_instance_id=9,
                ),
            ),
        ),
        INFERENCE: model.PreparedClaim(
            uid=INFERENCE,
            namespace="team-b",
            name="inference",
            state=model.PrepareState.STARTED,
            devices=(
                model.PreparedDevice(
                    request_names=("small",),
                    pool="node-a",
                    device="gpu-2-shared",
                    share_id="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                    cdi_ids=(f"k8s.gpu.dra.dev/claim={INFERENCE}-gpu-2-shared-a1b2c3d4",),
                    gpu_uuid="GPU-2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
                    consumed_capacity={"memory": "4Gi", "cores": "25"},
                    isolation=model.Isolation(
                        unknown={
                            "mpsPipeDir": f"{PLUGIN_DIR}/mps/gpu-2/pipe",
                            "quotaFile": f"{PLUGIN_DIR}/quota/9d8c7b6a.json",
                        }
                    ),
                ),
            ),
        ),
        MONITORING: model.PreparedClaim(
            uid=MONITORING,
            namespace="monitoring",
            name="dcgm",
            state=model.PrepareState.COMPLETED,
            devices=(
                model.PreparedDevice(
                    request_names=("gpus",),
                    pool="node-a",
                    device="gpu-0",
                    share_id=None,
                    cdi_ids=(f"k8s.gpu.dra.dev/claim={MONITORING}-gpu-0",),
                    gpu_uuid=GPU_0,
                    admin_access=True,
                ),
            ),
        ),
    },
)


def test_the_v1_fixture_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / store.FILE_NAME
    path.write_text(FIXTURE_V1)
    result = store.load(path, boot_id=BOOT)
    assert result == store.LoadResult(EXPECTED, store.LoadOutcome.LOADED)


@pytest.mark.skipif(scheme.LATEST.name != "v1", reason="the writer moved on to a newer version")
def test_the_writer_produces_the_fixture_byte_for_byte() -> None:
    # The fixture is indented for people; the writer writes the same content compactly.
    compact = json.dumps(json.loads(FIXTURE_V1), separators=(",", ":"), ensure_ascii=True)
    assert scheme.encode(EXPECTED).decode() == compact + "\n"


def _with_checksum(data: Any) -> bytes:
    envelope = {"kind": "GpuDraCheckpoint", "version": "v1", "checksum": "", "data": data}
    envelope["checksum"] = scheme.checksum(data)
    return json.dumps(envelope).encode()


def test_unknown_keys_are_ignored() -> None:
    data = json.loads(FIXTURE_V1)["data"]
    data["nodeName"] = "node-a"
    data["claims"][TRAINING]["preparedAt"] = "2030-01-01T00:00:00Z"
    data["claims"][TRAINING]["devices"][0]["healthy"] = True
    assert scheme.decode(_with_checksum(data)) == EXPECTED


def test_optional_fields_may_be_missing() -> None:
    data = json.loads(FIXTURE_V1)["data"]
    device = data["claims"][MONITORING]["devices"][0]
    for key in ("shareId", "migUuid", "migGpuInstanceId", "consumedCapacity", "isolation"):
        del device[key]
    del device["adminAccess"]
    decoded = scheme.decode(_with_checksum(data))
    assert decoded.claims[MONITORING].devices[0] == model.PreparedDevice(
        request_names=("gpus",),
        pool="node-a",
        device="gpu-0",
        share_id=None,
        cdi_ids=(f"k8s.gpu.dra.dev/claim={MONITORING}-gpu-0",),
        gpu_uuid=GPU_0,
    )


def _device_field(key: str, value: Any) -> Any:
    data = json.loads(FIXTURE_V1)["data"]
    data["claims"][TRAINING]["devices"][0][key] = value
    return data


def _claim_field(key: str, value: Any) -> Any:
    data = json.loads(FIXTURE_V1)["data"]
    data["claims"][TRAINING][key] = value
    return data


DEVICE_0 = f"data.claims['{TRAINING}'].devices[0]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "data: expected an object, got list", id="data-not-object"),
        pytest.param({"claims": {}}, "data.bootId: expected a string, got null", id="no-boot"),
        pytest.param({"bootId": "b"}, "data.claims: expected an object, got null", id="no-claims"),
        pytest.param(
            {"bootId": "b", "claims": {"u": 1}},
            "data.claims['u']: expected an object, got int",
            id="claim-not-object",
        ),
        pytest.param(
            _claim_field("state", "Prepared"),
            f"data.claims['{TRAINING}'].state: unknown state 'Prepared'",
            id="unknown-state",
        ),
        pytest.param(
            _claim_field("devices", {}),
            f"data.claims['{TRAINING}'].devices: expected an array, got dict",
            id="devices-not-array",
        ),
        pytest.param(
            _device_field("pool", None), f"{DEVICE_0}.pool: expected a string", id="pool-null"
        ),
        pytest.param(
            _device_field("requestNames", ["gpu", 1]),
            f"{DEVICE_0}.requestNames: expected an array of strings",
            id="request-name-int",
        ),
        pytest.param(
            _device_field("migGpuInstanceId", True),
            f"{DEVICE_0}.migGpuInstanceId: expected an integer, got bool",
            id="instance-id-bool",
        ),
        pytest.param(
            _device_field("adminAccess", "yes"),
            f"{DEVICE_0}.adminAccess: expected a boolean, got str",
            id="admin-access-str",
        ),
        pytest.param(
            _device_field("consumedCapacity", {"memory": 4}),
            f"{DEVICE_0}.consumedCapacity: expected an object of strings",
            id="capacity-int",
        ),
    ],
)
def test_a_field_of_the_wrong_type_is_refused(data: Any, message: str) -> None:
    with pytest.raises(errors.SchemaError) as caught:
        v1.decode(data)
    assert str(caught.value).startswith(message)
