"""MIG instances through the NVML backend: create at a placement, read back, destroy.

Covers: the create/status/destroy round trip and its log events, several instances side by side,
refusals (occupied placement, instance cap, placement or profile not on the GPU, MIG mode off, GPU
without MIG, unknown GPU), destroy of an instance that is gone, rollback of the GPU instance when
the compute instance cannot be made, and a GPU instance left without a compute instance.
"""

from __future__ import annotations

import ctypes

import pytest
import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.nvml import backend
from tests.dra_driver.backends.nvml import conftest, fakecodes, fakegpus, fakenvml

A100 = conftest.A100_UUID
P = hardware.Placement

pytestmark = pytest.mark.usefixtures("mig_enabled")


def test_create_status_destroy_round_trip(nvml_backend: backend.NvmlBackend) -> None:
    with structlog.testing.capture_logs() as logs:
        created = nvml_backend.create_mig_instance(A100, profile_id=9, placement=P(4, 4))
    assert created.parent_uuid == A100
    assert (created.profile_id, created.profile_name, created.placement) == (9, "3g.20gb", P(4, 4))
    assert created.uuid.startswith("MIG-")
    assert created.compute_instance_id == 0
    assert nvml_backend.status(A100).mig_instances == (created,)
    assert logs[-1]["event"] == "nvml.mig.created"
    assert logs[-1]["mig_uuid"] == created.uuid

    nvml_backend.destroy_mig_instance(A100, gpu_instance_id=created.gpu_instance_id)
    assert nvml_backend.status(A100).mig_instances == ()


def test_instances_side_by_side_are_listed_by_placement(
    nvml_backend: backend.NvmlBackend,
) -> None:
    big = nvml_backend.create_mig_instance(A100, profile_id=9, placement=P(4, 4))
    small = nvml_backend.create_mig_instance(A100, profile_id=19, placement=P(1, 1))
    pair = nvml_backend.create_mig_instance(A100, profile_id=14, placement=P(2, 2))
    assert nvml_backend.status(A100).mig_instances == (small, pair, big)
    assert len({small.uuid, pair.uuid, big.uuid}) == 3


@pytest.mark.parametrize(
    ("existing", "profile_id", "placement"),
    [
        pytest.param([(19, P(0, 1))], 19, P(0, 1), id="same-placement"),
        pytest.param([(19, P(5, 1))], 9, P(4, 4), id="overlapping-larger"),
        pytest.param([(0, P(0, 8))], 19, P(6, 1), id="inside-full-gpu"),
        pytest.param([(20, P(0, 1))], 20, P(3, 1), id="media-profile-cap-of-one"),
    ],
)
def test_occupied_placement_is_refused(
    nvml_backend: backend.NvmlBackend,
    existing: list[tuple[int, hardware.Placement]],
    profile_id: int,
    placement: hardware.Placement,
) -> None:
    for existing_profile, existing_placement in existing:
        nvml_backend.create_mig_instance(
            A100, profile_id=existing_profile, placement=existing_placement
        )
    with pytest.raises(errors.PlacementOccupiedError, match="INSUFFICIENT_RESOURCES") as raised:
        nvml_backend.create_mig_instance(A100, profile_id=profile_id, placement=placement)
    assert isinstance(raised.value.__cause__, fakecodes.NVMLError)
    assert len(nvml_backend.status(A100).mig_instances) == len(existing)


@pytest.mark.parametrize(
    ("gpu_uuid", "profile_id", "placement", "error", "message"),
    [
        pytest.param(
            A100, 9, P(2, 4), errors.MigError, "not one of profile 3g.20gb", id="bad-start"
        ),
        pytest.param(
            A100, 99, P(0, 1), errors.MigError, "no MIG profile with ID 99", id="no-profile"
        ),
        pytest.param(
            conftest.L4_UUID, 19, P(0, 1), errors.MigError, "no MIG profile", id="gpu-without-mig"
        ),
        pytest.param("GPU-nope", 19, P(0, 1), errors.UnknownGpuError, "GPU-nope", id="unknown-gpu"),
    ],
)
def test_requests_the_gpu_cannot_satisfy(
    nvml_backend: backend.NvmlBackend,
    *,
    gpu_uuid: str,
    profile_id: int,
    placement: hardware.Placement,
    error: type[errors.BackendError],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        nvml_backend.create_mig_instance(gpu_uuid, profile_id=profile_id, placement=placement)


def test_create_with_mig_mode_off_is_a_mig_mode_error(
    nvml_backend: backend.NvmlBackend, fake_gpus: list[fakegpus.Gpu]
) -> None:
    fake_gpus[0].mig_current = fake_gpus[0].mig_pending = 0
    with pytest.raises(errors.MigModeError, match="NOT_SUPPORTED"):
        nvml_backend.create_mig_instance(A100, profile_id=19, placement=P(0, 1))


@pytest.mark.parametrize("gpu_instance_id", [1, 14], ids=["never-created", "out-of-range"])
def test_destroy_of_a_missing_instance(
    nvml_backend: backend.NvmlBackend, gpu_instance_id: int
) -> None:
    with pytest.raises(errors.InstanceNotFoundError, match="NOT_FOUND"):
        nvml_backend.destroy_mig_instance(A100, gpu_instance_id=gpu_instance_id)


def test_destroy_twice_reports_the_second_as_not_found(nvml_backend: backend.NvmlBackend) -> None:
    created = nvml_backend.create_mig_instance(A100, profile_id=19, placement=P(3, 1))
    nvml_backend.destroy_mig_instance(A100, gpu_instance_id=created.gpu_instance_id)
    with pytest.raises(errors.InstanceNotFoundError):
        nvml_backend.destroy_mig_instance(A100, gpu_instance_id=created.gpu_instance_id)


def test_destroy_with_mig_mode_off_is_not_found(
    nvml_backend: backend.NvmlBackend, fake_gpus: list[fakegpus.Gpu]
) -> None:
    fake_gpus[0].mig_current = fake_gpus[0].mig_pending = 0
    with pytest.raises(errors.InstanceNotFoundError, match="NOT_SUPPORTED"):
        nvml_backend.destroy_mig_instance(A100, gpu_instance_id=1)


@pytest.mark.parametrize(
    "failing",
    [
        "nvmlGpuInstanceGetComputeInstanceProfileInfo",
        "nvmlGpuInstanceCreateComputeInstance",
        "nvmlComputeInstanceGetInfo",
    ],
    ids=["ci-profile", "ci-create", "ci-info"],
)
def test_compute_instance_failure_rolls_back_the_gpu_instance(
    nvml_backend: backend.NvmlBackend,
    fake_nvml: fakenvml.FakeNvml,
    fake_gpus: list[fakegpus.Gpu],
    failing: str,
) -> None:
    fake_nvml.fail(failing, "UNKNOWN")
    with structlog.testing.capture_logs() as logs, pytest.raises(errors.MigError, match="UNKNOWN"):
        nvml_backend.create_mig_instance(A100, profile_id=14, placement=P(0, 2))
    assert fake_gpus[0].gpu_instances == {}
    assert "nvml.mig.rolled_back" in [entry["event"] for entry in logs]
    # The placement is free again.
    nvml_backend.create_mig_instance(A100, profile_id=14, placement=P(0, 2))


def test_failed_rollback_is_noted_on_the_error(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    fake_nvml.fail("nvmlGpuInstanceCreateComputeInstance", "UNKNOWN")
    fake_nvml.fail("nvmlGpuInstanceDestroy", "GPU_IS_LOST")
    with pytest.raises(errors.MigError) as raised:
        nvml_backend.create_mig_instance(A100, profile_id=19, placement=P(0, 1))
    assert "could not be destroyed either" in "".join(raised.value.__notes__)


def test_gpu_instance_without_compute_instance_is_listed_and_destroyable(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    # What a crash between the two create steps leaves behind.
    fake_nvml.nvmlDeviceCreateGpuInstanceWithPlacement(
        fake_nvml.gpus[0], 9, _pointer(fakecodes.c_nvmlGpuInstancePlacement_t(0, 4))
    )
    (orphan,) = nvml_backend.status(A100).mig_instances
    assert (orphan.uuid, orphan.compute_instance_id, orphan.placement) == ("", -1, P(0, 4))
    nvml_backend.destroy_mig_instance(A100, gpu_instance_id=orphan.gpu_instance_id)
    assert nvml_backend.status(A100).mig_instances == ()


def _pointer(
    placement: fakecodes.c_nvmlGpuInstancePlacement_t,
) -> ctypes._Pointer[fakecodes.c_nvmlGpuInstancePlacement_t]:
    return ctypes.pointer(placement)
