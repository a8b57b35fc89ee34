"""The CDI JSON of a claim, exactly, and the specs a CDI runtime would refuse, refused by us first.

Covers: a claim with a full GPU, a MIG device and a share of a shared GPU, with common edits
(exact JSON); optional fields left out when unset; spec-level edits left out when empty; every
validation rule (no devices, a name without the claim UID, a duplicate name, a device without
edits, a bad env entry, device node type and permissions, empty mount paths).
"""

from __future__ import annotations

from typing import Any

import pytest

from dra_driver.cdi import errors, naming, spec

UID = "4b1f7a1e-9c2d-4e8f-a0b1-c2d3e4f5a6b7"
SHARE_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
GPU_0 = "GPU-8e1b7c3a-2d4f-4b6a-9c8e-1f2a3b4c5d6e"
MIG = "MIG-0f1e2d3c-4b5a-5968-8776-a5b4c3d2e1f0"
MPS = "/var/lib/kubelet/plugins/gpu.dra.dev/mps/gpu-2"

FULL_GPU = spec.Device(
    name=naming.device_name(UID, "gpu-0"),
    edits=spec.ContainerEdits(
        env=(f"GPU_DRA_VISIBLE_DEVICES={GPU_0}",),
        device_nodes=(spec.DeviceNode(path="/dev/nvidia0"),),
    ),
)
MIG_DEVICE = spec.Device(
    name=naming.device_name(UID, "gpu-1-mig-1g5gb-3"),
    edits=spec.ContainerEdits(
        env=(f"GPU_DRA_VISIBLE_DEVICES={MIG}",),
        device_nodes=(
            spec.DeviceNode(path="/dev/nvidia1"),
            spec.DeviceNode(
                path="/dev/nvidia-caps/nvidia-cap30",
                host_path="/dev/nvidia-caps/nvidia-cap30",
                type="c",
                major=237,
                minor=30,
                permissions="rw",
            ),
        ),
    ),
)
SHARE = spec.Device(
    name=naming.device_name(UID, "gpu-2-shared", SHARE_ID),
    edits=spec.ContainerEdits(
        env=("CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps",),
        device_nodes=(spec.DeviceNode(path="/dev/nvidia2"),),
        mounts=(
            spec.Mount(
                host_path=f"{MPS}/pipe",
                container_path="/tmp/nvidia-mps",
                options=("rw", "nosuid", "nodev", "bind"),
            ),
            spec.Mount(host_path=f"{MPS}/shm", container_path="/dev/shm", options=(), type="tmpfs"),
        ),
    ),
)
COMMON = spec.ContainerEdits(
    device_nodes=(spec.DeviceNode(path="/dev/nvidiactl"), spec.DeviceNode(path="/dev/nvidia-uvm")),
    mounts=(
        spec.Mount(
            host_path="/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            container_path="/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        ),
    ),
)

EXPECTED: dict[str, Any] = {
    "cdiVersion": "0.5.0",
    "kind": "k8s.gpu.dra.dev/claim",
    "devices": [
        {
            "name": f"{UID}-gpu-0",
            "containerEdits": {
                "env": [f"GPU_DRA_VISIBLE_DEVICES={GPU_0}"],
                "deviceNodes": [{"path": "/dev/nvidia0"}],
            },
        },
        {
            "name": f"{UID}-gpu-1-mig-1g5gb-3",
            "containerEdits": {
                "env": [f"GPU_DRA_VISIBLE_DEVICES={MIG}"],
                "deviceNodes": [
                    {"path": "/dev/nvidia1"},
                    {
                        "path": "/dev/nvidia-caps/nvidia-cap30",
                        "hostPath": "/dev/nvidia-caps/nvidia-cap30",
                        "type": "c",
                        "major": 237,
                        "minor": 30,
                        "permissions": "rw",
                    },
                ],
            },
        },
        {
            "name": f"{UID}-gpu-2-shared-a1b2c3d4",
            "containerEdits": {
                "env": ["CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps"],
                "deviceNodes": [{"path": "/dev/nvidia2"}],
                "mounts": [
                    {
                        "hostPath": f"{MPS}/pipe",
                        "containerPath": "/tmp/nvidia-mps",
                        "options": ["rw", "nosuid", "nodev", "bind"],
                    },
                    {"hostPath": f"{MPS}/shm", "containerPath": "/dev/shm", "type": "tmpfs"},
                ],
            },
        },
    ],
    "containerEdits": {
        "deviceNodes": [{"path": "/dev/nvidiactl"}, {"path": "/dev/nvidia-uvm"}],
        "mounts": [
            {
                "hostPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                "containerPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                "options": ["ro", "nosuid", "nodev", "bind"],
            }
        ],
    },
}


def test_a_claim_with_a_gpu_a_mig_device_and_a_share() -> None:
    assert spec.render(UID, [FULL_GPU, MIG_DEVICE, SHARE], COMMON) == EXPECTED


def test_empty_common_edits_are_left_out() -> None:
    assert spec.render(UID, [FULL_GPU]) == {
        "cdiVersion": "0.5.0",
        "kind": "k8s.gpu.dra.dev/claim",
        "devices": [EXPECTED["devices"][0]],
    }


def _device(name: str = f"{UID}-gpu-0", **edits: Any) -> spec.Device:
    return spec.Device(name=name, edits=spec.ContainerEdits(**edits))


NODE = (spec.DeviceNode(path="/dev/nvidia0"),)


@pytest.mark.parametrize(
    ("devices", "common", "error", "message"),
    [
        pytest.param([], spec.NO_EDITS, errors.InvalidSpecError, "at least one", id="no-devices"),
        pytest.param(
            [_device("other-claim-gpu-0", device_nodes=NODE)],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "does not start with its claim UID",
            id="foreign-name",
        ),
        pytest.param(
            [_device(f"{UID}-gpu/0", device_nodes=NODE)],
            spec.NO_EDITS,
            errors.InvalidNameError,
            "invalid CDI device name",
            id="bad-name",
        ),
        pytest.param(
            [_device(device_nodes=NODE), _device(env=("A=1",))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "appears twice",
            id="duplicate-name",
        ),
        pytest.param(
            [_device()], spec.NO_EDITS, errors.InvalidSpecError, "no container edits", id="no-edits"
        ),
        pytest.param(
            [_device(env=("=value",))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "invalid environment entry '=value'",
            id="env-without-name",
        ),
        pytest.param(
            [_device(env=("JUST_A_NAME",))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "invalid environment entry",
            id="env-without-equals",
        ),
        pytest.param(
            [_device(device_nodes=(spec.DeviceNode(path=""),))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "empty path",
            id="node-without-path",
        ),
        pytest.param(
            [_device(device_nodes=(spec.DeviceNode(path="/dev/x", type="x"),))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "has type 'x'",
            id="node-type",
        ),
        pytest.param(
            [_device(device_nodes=(spec.DeviceNode(path="/dev/x", permissions="rwx"),))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "has permissions 'rwx'",
            id="node-permissions",
        ),
        pytest.param(
            [_device(mounts=(spec.Mount(host_path="", container_path="/x"),))],
            spec.NO_EDITS,
            errors.InvalidSpecError,
            "needs a host and a container path",
            id="mount-without-host-path",
        ),
        pytest.param(
            [_device(device_nodes=NODE)],
            spec.ContainerEdits(env=("BROKEN",)),
            errors.InvalidSpecError,
            "common edits: invalid environment entry",
            id="bad-common-edits",
        ),
    ],
)
def test_invalid_specs_are_refused(
    devices: list[spec.Device],
    common: spec.ContainerEdits,
    error: type[errors.CdiError],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        spec.render(UID, devices, common)


@pytest.mark.parametrize("permissions", ["r", "rw", "rwm", "mwr", "none"])
def test_valid_permissions_are_accepted(permissions: str) -> None:
    node = spec.DeviceNode(path="/dev/nvidia0", permissions=permissions)
    rendered = spec.render(UID, [_device(device_nodes=(node,))])
    assert rendered["devices"][0]["containerEdits"]["deviceNodes"] == [
        {"path": "/dev/nvidia0", "permissions": permissions}
    ]
