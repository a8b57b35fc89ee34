"""GPU-wide state through the NVML backend: MIG mode, compute mode, time-slice and `status()`.

Covers: status of a fresh GPU and of a GPU without MIG; MIG mode on and off, the no-op when it
already is, refusals (instances exist, GPU without MIG, change left pending until a reset); compute
mode set and read back, and a mode the driver does not manage; time-slice through a stand-in
``nvidia-smi`` (its argv, the remembered level, a non-zero exit with its stderr, a missing
executable, an unknown GPU).
"""

from __future__ import annotations

import pathlib

import pytest
import structlog

from dra_driver import hardware
from dra_driver.backends import errors
from dra_driver.backends.nvml import backend
from tests.dra_driver.backends.nvml import conftest, fakegpus, fakenvml

A100 = conftest.A100_UUID
L4 = conftest.L4_UUID
P = hardware.Placement

FAILING_NVIDIA_SMI = """#!/bin/sh
echo "Unable to set the compute policy: Insufficient Permissions" >&2
exit 4
"""


@pytest.mark.parametrize("gpu_uuid", [A100, L4], ids=["a100", "l4"])
def test_status_of_a_fresh_gpu(nvml_backend: backend.NvmlBackend, gpu_uuid: str) -> None:
    assert nvml_backend.status(gpu_uuid) == hardware.GpuStatus(
        uuid=gpu_uuid,
        mig_enabled=False,
        mig_instances=(),
        compute_mode=hardware.ComputeMode.DEFAULT,
        timeslice=hardware.TimesliceInterval.DEFAULT,
    )


def test_status_of_an_unknown_gpu(nvml_backend: backend.NvmlBackend) -> None:
    with pytest.raises(errors.UnknownGpuError, match="GPU-nope"):
        nvml_backend.status("GPU-nope")


def test_mig_mode_on_and_off(nvml_backend: backend.NvmlBackend) -> None:
    with structlog.testing.capture_logs() as logs:
        nvml_backend.set_mig_mode(A100, enabled=True)
    assert nvml_backend.status(A100).mig_enabled
    assert logs == [
        {"event": "nvml.mig.mode_set", "gpu_uuid": A100, "enabled": True, "log_level": "info"}
    ]
    nvml_backend.set_mig_mode(A100, enabled=False)
    assert not nvml_backend.status(A100).mig_enabled


@pytest.mark.usefixtures("mig_enabled")
def test_mig_mode_already_set_is_a_no_op(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    nvml_backend.set_mig_mode(A100, enabled=True)
    assert "nvmlDeviceSetMigMode" not in fake_nvml.calls


@pytest.mark.usefixtures("mig_enabled")
def test_mig_mode_off_refused_while_instances_exist(nvml_backend: backend.NvmlBackend) -> None:
    nvml_backend.create_mig_instance(A100, profile_id=19, placement=P(0, 1))
    with pytest.raises(errors.MigModeError, match="1 MIG instances exist"):
        nvml_backend.set_mig_mode(A100, enabled=False)
    assert nvml_backend.status(A100).mig_enabled


@pytest.mark.usefixtures("mig_enabled")
def test_mig_mode_off_refused_by_nvml_when_in_use(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    fake_nvml.fail("nvmlDeviceSetMigMode", "IN_USE")
    with pytest.raises(errors.MigModeError, match="In use by another client"):
        nvml_backend.set_mig_mode(A100, enabled=False)


def test_mig_mode_on_a_gpu_without_mig(nvml_backend: backend.NvmlBackend) -> None:
    with pytest.raises(errors.MigModeError, match="NOT_SUPPORTED"):
        nvml_backend.set_mig_mode(L4, enabled=True)


@pytest.mark.parametrize(
    "nvml_options", [{"mig_change_needs_reset": True}], ids=["change-needs-reset"]
)
def test_mig_mode_change_left_pending(nvml_backend: backend.NvmlBackend) -> None:
    with pytest.raises(errors.MigModeError, match="RESET_REQUIRED"):
        nvml_backend.set_mig_mode(A100, enabled=True)
    assert not nvml_backend.status(A100).mig_enabled


@pytest.mark.parametrize("mode", list(hardware.ComputeMode), ids=lambda mode: mode.name)
def test_compute_mode_round_trip(
    nvml_backend: backend.NvmlBackend, mode: hardware.ComputeMode
) -> None:
    nvml_backend.set_compute_mode(A100, mode)
    assert nvml_backend.status(A100).compute_mode is mode


def test_compute_mode_refused_by_nvml(
    nvml_backend: backend.NvmlBackend, fake_nvml: fakenvml.FakeNvml
) -> None:
    fake_nvml.fail("nvmlDeviceSetComputeMode", "NO_PERMISSION")
    with pytest.raises(errors.BackendError, match="Insufficient Permissions"):
        nvml_backend.set_compute_mode(A100, hardware.ComputeMode.EXCLUSIVE_PROCESS)


def test_an_admins_prohibited_compute_mode_is_reported(
    nvml_backend: backend.NvmlBackend, fake_gpus: list[fakegpus.Gpu]
) -> None:
    fake_gpus[0].compute_mode = 2  # PROHIBITED, set by an admin
    assert nvml_backend.status(A100).compute_mode is hardware.ComputeMode.PROHIBITED


def test_an_unknown_compute_mode_is_an_error(
    nvml_backend: backend.NvmlBackend, fake_gpus: list[fakegpus.Gpu]
) -> None:
    fake_gpus[0].compute_mode = 1  # EXCLUSIVE_THREAD, deprecated and never set by us
    with pytest.raises(errors.BackendError, match="compute mode 1"):
        nvml_backend.status(A100)


@pytest.mark.parametrize(
    "interval", list(hardware.TimesliceInterval), ids=lambda interval: interval.name
)
def test_timeslice_runs_nvidia_smi(
    nvml_backend: backend.NvmlBackend,
    nvidia_smi: pathlib.Path,
    interval: hardware.TimesliceInterval,
) -> None:
    nvml_backend.set_timeslice(L4, interval)
    argv = (nvidia_smi.parent / "argv.txt").read_text().splitlines()
    assert argv == ["compute-policy", "-i", L4, "--set-timeslice", str(interval.value)]
    assert nvml_backend.status(L4).timeslice is interval


def test_timeslice_failure_carries_stderr(
    nvml_backend: backend.NvmlBackend, nvidia_smi: pathlib.Path
) -> None:
    nvml_backend.set_timeslice(L4, hardware.TimesliceInterval.LONG)
    nvidia_smi.write_text(FAILING_NVIDIA_SMI)
    with pytest.raises(errors.BackendError, match=r"exit status 4\): Unable to set") as raised:
        nvml_backend.set_timeslice(L4, hardware.TimesliceInterval.SHORT)
    assert "Insufficient Permissions" in str(raised.value)
    assert nvml_backend.status(L4).timeslice is hardware.TimesliceInterval.LONG


def test_timeslice_without_nvidia_smi(
    nvml_backend: backend.NvmlBackend, nvidia_smi: pathlib.Path
) -> None:
    nvidia_smi.unlink()
    with pytest.raises(errors.BackendError, match="cannot run") as raised:
        nvml_backend.set_timeslice(L4, hardware.TimesliceInterval.SHORT)
    assert isinstance(raised.value.__cause__, OSError)


def test_timeslice_of_an_unknown_gpu(
    nvml_backend: backend.NvmlBackend, nvidia_smi: pathlib.Path
) -> None:
    with pytest.raises(errors.UnknownGpuError):
        nvml_backend.set_timeslice("GPU-nope", hardware.TimesliceInterval.SHORT)
    assert not (nvidia_smi.parent / "argv.txt").exists()


@pytest.mark.usefixtures("fake_nvml")
def test_timeslice_of_a_hung_nvidia_smi(sysfs_root: pathlib.Path, tmp_path: pathlib.Path) -> None:
    hung = tmp_path / "hung-nvidia-smi"
    hung.write_text("#!/bin/sh\nexec sleep 10\n")
    hung.chmod(0o755)
    with (
        backend.NvmlBackend(
            sysfs_root=sysfs_root, nvidia_smi=hung, timeslice_timeout_s=0.2
        ) as nvml,
        pytest.raises(errors.BackendError, match=r"within 0\.2 s"),
    ):
        nvml.set_timeslice(L4, hardware.TimesliceInterval.SHORT)
